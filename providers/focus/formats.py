"""Which billing export a file is, told from its header alone.

Every format is recognised by a few columns it cannot lack; a header that matches none is refused with
a one-line error naming the file and the columns each format needs.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence

from providers.focus.errors import BillingError


class Format(enum.StrEnum):
    FOCUS = "focus"  # FOCUS 1.0+ (any provider's FOCUS export, the FOCUS working group's samples)
    AWS_CUR1 = "aws-cur-1.0"  # legacy Cost and Usage Report: ``lineItem/UnblendedCost``
    AWS_CUR2 = "aws-cur-2.0"  # Data Exports CUR 2.0: ``line_item_unblended_cost``
    AZURE = "azure-cost-details"  # EA / MCA cost details, actual or amortized: ``Date``, ``Cost``, ``ChargeType``


#: The columns each format must have (compared case-insensitively); the first match wins.
REQUIRED: dict[Format, tuple[tuple[str, ...], ...]] = {
    Format.FOCUS: (("BilledCost",), ("ChargePeriodStart",), ("ChargePeriodEnd",)),
    Format.AWS_CUR1: (("lineItem/UnblendedCost",), ("lineItem/UsageStartDate",), ("lineItem/UsageEndDate",)),
    Format.AWS_CUR2: (("line_item_unblended_cost",), ("line_item_usage_start_date",), ("line_item_usage_end_date",)),
    # Each inner tuple lists alternatives: EA says Cost (older) or CostInBillingCurrency, MCA costInBillingCurrency.
    Format.AZURE: (("CostInBillingCurrency", "Cost", "PreTaxCost"), ("Date", "UsageDate"),
                   ("ChargeType", "MeterCategory")),
}

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def cur1_key(name: str) -> str:
    """A legacy CUR column in CUR 2.0 spelling: ``reservation/ReservationARN`` -> ``reservation_reservation_a_r_n``.

    CUR 2.0 snake-cases every capital letter on its own, which is why ARN becomes ``a_r_n``.
    """
    if "/" not in name:
        return name.lower()
    category, attribute = name.split("/", 1)
    return f"{_CAMEL.sub('_', category).lower()}_{_CAMEL.sub('_', attribute).lower()}"


def detect(names: Sequence[str], file: str) -> Format:
    """The format of a file with these header columns, or a ``BillingError`` naming what was expected."""
    have = {n.strip().lower() for n in names}
    for fmt, needs in REQUIRED.items():
        if all(any(alt.lower() in have for alt in alternatives) for alternatives in needs):
            return fmt
    shown = ", ".join(n for n in list(names)[:6]) + (", ..." if len(names) > 6 else "")
    expected = "; ".join(f"{fmt.value} ({', '.join('/'.join(a) for a in needs)})" for fmt, needs in REQUIRED.items())
    raise BillingError(file, f"unrecognised billing export header [{shown}]; expected one of: {expected}",
                       hint="give FOCUS 1.0+, AWS CUR 1.0/2.0 or Azure cost-details exports (CSV or Parquet)")
