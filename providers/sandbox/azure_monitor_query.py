"""The query side of the Azure Monitor metrics emulator (``azure_monitor``): stored series and their evaluation.

Written from the public REST reference (Metrics - List, api-version 2018-01-01 .. 2024-02-01) and shaped
on recorded answers (cloud-custodian's ``ArmResourceTest.test_metric_filter_find*`` cassettes):

- ``Series`` / ``StoredMetric``: the samples seeded per dimension set (numpy arrays, epoch seconds).
- ``parse_filter``: ``$filter`` as ``dim eq 'v'`` clauses joined by ``and``; ``or`` only between values of
  one dimension; ``'*'`` splits.
- ``timespan``: ``A/B`` in ISO 8601; a span over 30 days is cut to its last 30 days (users report the
  service silently answering only the last month; the docs say one query spans at most 30 days).
- ``timeseries``: the series of one metric split by the filter's dimensions (each named dimension becomes
  a ``metadatavalues`` entry, its name lower-cased as the getBatch migration guide's samples show), at
  most ``top`` of them; a dimension the metric lacks is a 400 (``MetricsError``).
- ``aggregate``: every bucket from the timespan start floored to the minute (the recorded P1D answer for
  ``23:59:59`` starts at ``23:59:00``); a bucket without samples carries only ``timeStamp``. ``average`` =
  sum / count over every sample of the merged series (how Azure averages custom metrics across
  dimension values).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd

GRAINS = {"PT1M": 60, "PT5M": 300, "PT15M": 900, "PT30M": 1800, "PT1H": 3600, "PT6H": 21600, "PT12H": 43200,
          "P1D": 86400}
AGGREGATIONS = ("average", "minimum", "maximum", "total", "count")
MAX_SPAN = timedelta(days=30)
DEFAULT_TOP = 10
_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<word>[^\s']+))")


class MetricsError(Exception):
    """A request the metrics API refuses with HTTP 400 (``code`` BadRequest)."""


@dataclass
class Series:
    dims: dict[str, str]  # lower-cased names -> values
    ts: np.ndarray  # int64 epoch seconds
    values: np.ndarray  # float64


@dataclass
class StoredMetric:
    name: str
    unit: str
    series: list[Series] = field(default_factory=list)

    def dimensions(self) -> list[str]:
        return sorted({d for s in self.series for d in s.dims})


def to_arrays(points: Any) -> tuple[np.ndarray, np.ndarray]:
    """``[(t, v), ...]`` or ``(timestamps, values)`` as (epoch seconds, floats); the second element of the
    pair form holds a timestamp, the values of the arrays form do not."""
    stamp = (datetime, pd.Timestamp, np.datetime64)
    if isinstance(points, tuple) and len(points) == 2 and not any(isinstance(x, stamp) for x in points[1]):
        stamps, values = points
    else:
        pairs = list(points)
        stamps, values = [p[0] for p in pairs], [p[1] for p in pairs]
    ts = pd.DatetimeIndex(pd.to_datetime(stamps, utc=True)).as_unit("s").asi8.astype(np.int64)
    vals = np.asarray(values, dtype=np.float64)
    if len(ts) != len(vals):
        raise ValueError(f"{len(ts)} timestamps but {len(vals)} values")
    return ts, vals


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.strip().replace(" ", "T").replace("Z", "+00:00"))
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def parse_filter(text: str) -> list[tuple[str, list[str]]]:
    """``$filter`` as ``[(dimension, [values])]`` (one entry per dimension, ``*`` meaning every value).

    ``or`` may only join values of one dimension, as the reference's "invalid variant" example says.
    """
    tokens = [("str", m["str"][1:-1].replace("''", "'")) if m["str"] is not None else ("word", m["word"])
              for m in _TOKEN.finditer(text.strip())]
    clauses: dict[str, list[str]] = {}
    for conjunct in _split(tokens, "and"):
        pairs = []
        for term in _split(conjunct, "or"):
            if len(term) != 3 or term[0][0] != "word" or term[2][0] != "str":
                raise MetricsError(f"Invalid $filter: {text!r}")
            if term[1][1].lower() != "eq":
                raise MetricsError(f"Invalid $filter: operator {term[1][1]!r} is not supported here (use eq)")
            pairs.append((term[0][1].lower(), term[2][1]))
        if len({d for d, _ in pairs}) > 1:
            raise MetricsError("Invalid $filter: the logical or operator cannot separate two different metadata names")
        clauses.setdefault(pairs[0][0], []).extend(v for _, v in pairs)
    return list(clauses.items())


def _split(tokens: list[tuple[str, str]], word: str) -> list[list[tuple[str, str]]]:
    parts: list[list[tuple[str, str]]] = [[]]
    for token in tokens:
        if token[0] == "word" and token[1].lower() == word:
            parts.append([])
        else:
            parts[-1].append(token)
    return parts


def timespan(text: str | None) -> tuple[datetime, datetime]:
    """Metrics - List's ``timespan`` (default: the last hour), cut to its last 30 days."""
    if not text:
        end = datetime.now(timezone.utc)
        return end - timedelta(hours=1), end
    try:
        first, second = text.split("/", 1)
        start, end = parse_time(first), parse_time(second)
    except ValueError as exc:
        raise MetricsError(f"Invalid timespan {text!r}: expected 'startDateTime_ISO/endDateTime_ISO'") from exc
    if end <= start:
        raise MetricsError(f"Invalid timespan {text!r}: the end must be after the start")
    return max(start, end - MAX_SPAN), end


def timeseries(metric: StoredMetric, clauses: list[tuple[str, list[str]]], base: int, stop: int, grain: int,
               aggs: Sequence[str], top: int, platform: bool) -> list[dict[str, Any]]:
    """A metric's ``timeseries``: one per combination of the filter's dimension values (at most ``top`` when
    the filter names any), each aggregated over every bucket from ``base`` to ``stop``."""
    supported = set(metric.dimensions())
    unknown = [d for d, _ in clauses if d not in supported]
    if unknown and metric.series:
        raise MetricsError(f"Metric: {metric.name} does not support requested dimension combination: "
                           f"{','.join(unknown)}, supported ones are: {','.join(sorted(supported)) or 'none'}")
    groups: dict[tuple[str, ...], list[Series]] = defaultdict(list)
    for s in metric.series:
        key = []
        for dim, wanted in clauses:
            value = s.dims.get(dim)
            if value is None or ("*" not in wanted and value.lower() not in {w.lower() for w in wanted}):
                break
            key.append(value)
        else:
            groups[tuple(key)].append(s)
    if not groups and not clauses and platform:  # a platform metric lists its (empty) buckets
        return [{"metadatavalues": [], "data": aggregate([], base, stop, grain, aggs)}]
    out = []
    for key in sorted(groups, key=lambda k: tuple(_sort_key(v) for v in k))[: top if clauses else None]:
        meta = [{"name": {"value": d, "localizedValue": d}, "value": v} for (d, _), v in zip(clauses, key)]
        out.append({"metadatavalues": meta, "data": aggregate(groups[key], base, stop, grain, aggs)})
    return out


def aggregate(series: Iterable[Series], base: int, stop: int, grain: int,
              aggs: Sequence[str]) -> list[dict[str, Any]]:
    n = max(1, -(-(stop - base) // grain))
    series = list(series)
    ts = np.concatenate([s.ts for s in series] or [np.array([], dtype=np.int64)])
    vals = np.concatenate([s.values for s in series] or [np.array([], dtype=np.float64)])
    keep = (ts >= base) & (ts < stop) & np.isfinite(vals)
    idx = ((ts[keep] - base) // grain).astype(np.int64)
    vals = vals[keep]
    count = np.bincount(idx, minlength=n)
    total = np.bincount(idx, weights=vals, minlength=n)
    high = np.full(n, -np.inf)
    low = np.full(n, np.inf)
    np.maximum.at(high, idx, vals)
    np.minimum.at(low, idx, vals)
    out = []
    for i in range(n):
        point: dict[str, Any] = {"timeStamp": iso(base + i * grain)}
        if count[i]:
            values = {"average": total[i] / count[i], "minimum": low[i], "maximum": high[i], "total": total[i],
                      "count": count[i]}
            point.update({agg: float(values[agg]) for agg in aggs})
        out.append(point)
    return out


def _sort_key(value: str) -> tuple[int, Any]:
    return (0, int(value)) if value.isdigit() else (1, value)


def resource_type(resource_id: str) -> str:
    """``Microsoft.Compute/virtualMachines`` from an ARM id (the resource's platform metric namespace)."""
    parts = resource_id.strip("/").split("/")
    try:
        i = [p.lower() for p in parts].index("providers")
    except ValueError:
        return ""
    provider, rest = parts[i + 1], parts[i + 2:]
    return "/".join([provider] + rest[0::2])


def arm_error(code: str, message: str) -> dict[str, Any]:
    """ARM's error body ``{"error": {"code", "message"}}`` (the batch API answers its 400s in this shape too)."""
    return {"error": {"code": code, "message": message}}
