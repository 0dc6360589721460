"""What a format mapping is: the FOCUS columns costagent reads, as SQL over one file's columns.

Each native format (``aws_cur.py``, ``azure_export.py``) and FOCUS itself (``focus_export.py``) is one
``Mapping``: the typing its CSV columns need (so DuckDB's CSV reader rejects, with file and line, what
does not parse) and one SQL expression per FOCUS column.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from collections.abc import Mapping as MappingType
from dataclasses import dataclass

from providers.focus.columns import Columns
from providers.focus.formats import Format

#: The FOCUS columns (plus ``x_InstanceType``: FOCUS 1.0 has no instance-type column) every mapping yields.
FOCUS_COLUMNS = (
    "ProviderName", "BillingAccountId", "SubAccountId", "ServiceName", "ChargeCategory", "PricingCategory",
    "ChargePeriodStart", "ChargePeriodEnd", "BilledCost", "EffectiveCost", "ListCost", "ResourceId",
    "RegionId", "SkuId", "x_InstanceType", "ConsumedQuantity", "ConsumedUnit", "CommitmentDiscountId",
    "CommitmentDiscountType", "CommitmentDiscountCategory", "CommitmentDiscountStatus", "BillingCurrency",
)

#: FOCUS columns a good row cannot lack after mapping (a row without them is a bad row).
REQUIRED_AFTER_MAPPING = ("BilledCost", "EffectiveCost", "ChargePeriodStart", "ChargePeriodEnd")


@dataclass(frozen=True)
class Mapping:
    """One format's mapping onto FOCUS. Column keys are in the spelling ``key`` produces."""

    format: Format
    select: Callable[[Columns], MappingType[str, str]]  # FOCUS column -> SQL expression
    money: tuple[str, ...] = ()  # typed DECIMAL(38,18) when read from CSV
    numbers: tuple[str, ...] = ()  # typed DOUBLE
    times: tuple[str, ...] = ()  # typed TIMESTAMPTZ
    dates: tuple[str, ...] = ()  # a date or a timestamp, decided from the first value (Azure's Date)
    #: Groups of alternatives: the first present column of each group feeds a required FOCUS column,
    #: so a row where it is empty is a bad row (used to find the CSV line of such rows).
    required: tuple[tuple[str, ...], ...] = ()
    key: Callable[[str], str] = str.lower

    def required_columns(self, names: Sequence[str]) -> list[str]:
        """The actual columns of a header that a good row cannot leave empty."""
        by_key = {}
        for name in names:
            by_key.setdefault(self.key(name), name)
        return [next(by_key[k] for k in group if k in by_key) for group in self.required
                if any(k in by_key for k in group)]

    def expressions(self, cols: Columns) -> dict[str, str]:
        exprs = dict(self.select(cols))
        missing = [c for c in FOCUS_COLUMNS if c not in exprs]
        if missing:  # a programming error in a mapping, not a data problem
            raise ValueError(f"{self.format} mapping lacks {missing}")
        return {c: exprs[c] for c in FOCUS_COLUMNS}


def hours_unit(unit_expr: str) -> str:
    """SQL: true when a consumed unit means hours (``Hours``, ``Hrs``, Azure's ``1 Hour``)."""
    return f"regexp_matches(coalesce({unit_expr}, ''), '^\\s*(1\\s+)?(1\\s+)?(hours?|hrs?)\\s*$', 'i')"
