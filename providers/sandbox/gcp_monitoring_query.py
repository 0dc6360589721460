"""The query side of the Cloud Monitoring emulator (``gcp_monitoring``): stored series, filters, alignment, points.

- ``Series``: one stored time series (labels, kind, value type, samples as numpy arrays).
- The ``ListTimeSeries`` filter language (``FilterParser``, ``matches``, ``pinned_metric_type``), written
  from cloud.google.com/monitoring/api/v3/filters: selectors, operators, functions, ``AND``/``OR``/``NOT``
  with precedence NOT > OR > AND.
- Per-series alignment (``align``) as cloud.google.com/monitoring/api/v3/aggregation describes it and the
  recorded answers show: periods anchored at the interval end, one point per non-empty period, newest first.
- The ``TimeSeries`` header and its points (``fill_time_series``, ``encode_points``): the
  ``google.monitoring.v3`` protobuf messages, the points written straight in the protobuf wire format with
  numpy (building ~10^5 ``Point`` messages one by one costs seconds).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from google.cloud import monitoring_v3

KINDS = {"GAUGE": 1, "DELTA": 2, "CUMULATIVE": 3}  # google.api.MetricDescriptor.MetricKind
VALUE_TYPES = {"BOOL": 1, "INT64": 2, "DOUBLE": 3}  # google.api.MetricDescriptor.ValueType
GAUGE, DELTA, CUMULATIVE = 1, 2, 3
INT64, DOUBLE = 2, 3
NS = 1_000_000_000
Aligner = monitoring_v3.Aggregation.Aligner
DELTA_ONLY = {Aligner.ALIGN_RATE, Aligner.ALIGN_DELTA}  # for DELTA / CUMULATIVE metrics only
SUPPORTED = {Aligner.ALIGN_NONE, Aligner.ALIGN_MAX, Aligner.ALIGN_MIN, Aligner.ALIGN_MEAN, Aligner.ALIGN_SUM,
             Aligner.ALIGN_COUNT} | DELTA_ONLY  # the aligners emulated


@dataclass
class Series:
    """One stored time series: its identity (metric and monitored resource labels), kind and samples."""

    project: str
    metric_type: str
    metric_labels: dict[str, str]
    resource_type: str
    resource_labels: dict[str, str]
    kind: int
    value_type: int
    unit: str
    system_labels: dict[str, str]
    user_labels: dict[str, str]
    times: np.ndarray  # int64 ns since the epoch, ascending, unique
    values: np.ndarray  # float64 (int64 for INT64 series)
    order: tuple[Any, ...] = field(default=())


# -- the filter language ----------------------------------------------------------------------
_TOKEN = re.compile(r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<op>!=|>=|<=|=|:|<|>)"""
                    r"""|(?P<lp>\()|(?P<rp>\))|(?P<comma>,)|(?P<word>[A-Za-z0-9_.\-/*]+))""")
_FUNCS = {"starts_with", "ends_with", "has_substring", "one_of", "monitoring.regex.full_match"}
_SELECTOR = re.compile(r"metric\.type|resource\.type|project|(metric|resource)\.labels?\.\w+"
                       r"|metadata\.(system|user)_labels?\.\w+")


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        if not text[pos:].strip():
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"unexpected character at position {pos}: {text[pos:pos + 20]!r}")
        kind = m.lastgroup or ""
        value = m.group(kind)
        if kind == "str":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        out.append((kind, value))
        pos = m.end()
    return out


class FilterParser:
    """Recursive descent: or-expressions bind tighter than and-expressions (NOT > OR > AND)."""

    def __init__(self, text: str) -> None:
        self.toks, self.i = _tokens(text), 0

    def parse(self) -> tuple:
        if not self.toks:
            raise ValueError("empty filter")
        node = self._and()
        if self.i != len(self.toks):
            raise ValueError(f"unexpected {self.toks[self.i][1]!r}")
        return node

    def _peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _take(self, kind: str) -> str:
        tok = self._peek()
        if tok is None or tok[0] != kind:
            raise ValueError(f"expected {kind}, got {tok[1] if tok else 'end of filter'!r}")
        self.i += 1
        return tok[1]

    def _word(self, *words: str) -> bool:
        tok = self._peek()
        if tok and tok[0] == "word" and tok[1] in words:
            self.i += 1
            return True
        return False

    def _and(self) -> tuple:
        parts = [self._or()]
        while (tok := self._peek()) is not None and tok[0] != "rp":
            self._word("AND")
            parts.append(self._or())
        return parts[0] if len(parts) == 1 else ("and", parts)

    def _or(self) -> tuple:
        parts = [self._not()]
        while self._word("OR"):
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else ("or", parts)

    def _not(self) -> tuple:
        if self._word("NOT"):
            return ("not", self._not())
        tok = self._peek()
        if tok and tok[0] == "lp":
            self.i += 1
            node = self._and()
            self._take("rp")
            return node
        selector = self._take("word")
        if selector.endswith(".") and (tok := self._peek()) and tok[0] == "str":  # metric.label."memory_state"
            selector += self._take("str")
        if not _SELECTOR.fullmatch(selector):
            raise ValueError(f"unknown selector {selector!r}")
        op = self._take("op")
        value = self._value()
        if value[0] == "monitoring.regex.full_match":
            re.compile(value[1][0])
        return ("cmp", selector, op, value)

    def _value(self) -> tuple:
        tok = self._peek()
        if tok and tok[0] == "word" and tok[1] in _FUNCS:
            self.i += 1
            self._take("lp")
            args = [self._take("str")]
            while self._peek() and self._peek()[0] == "comma":
                self.i += 1
                args.append(self._take("str"))
            self._take("rp")
            return (tok[1], args)
        if tok and tok[0] in ("str", "word"):
            self.i += 1
            return ("literal", [tok[1]])
        raise ValueError(f"expected a value, got {tok[1] if tok else 'end of filter'!r}")


def _selector_value(s: Series, selector: str) -> str | None:
    parts = selector.split(".")
    if selector == "metric.type":
        return s.metric_type
    if selector == "resource.type":
        return s.resource_type
    if selector == "project":
        return s.project
    if len(parts) == 3 and parts[0] == "metric" and parts[1] in ("labels", "label"):
        return s.metric_labels.get(parts[2])
    if len(parts) == 3 and parts[0] == "resource" and parts[1] in ("labels", "label"):
        return s.resource_labels.get(parts[2])
    if len(parts) == 3 and parts[0] == "metadata" and parts[1] in ("system_labels", "system_label"):
        return s.system_labels.get(parts[2])
    if len(parts) == 3 and parts[0] == "metadata" and parts[1] in ("user_labels", "user_label"):
        return s.user_labels.get(parts[2])
    raise ValueError(f"unknown selector {selector!r}")


def matches(node: tuple, s: Series) -> bool:
    """Whether series ``s`` satisfies the parsed filter ``node`` (``FilterParser(text).parse()``)."""
    kind = node[0]
    if kind == "and":
        return all(matches(n, s) for n in node[1])
    if kind == "or":
        return any(matches(n, s) for n in node[1])
    if kind == "not":
        return not matches(node[1], s)
    _, selector, op, (fn, args) = node
    got = _selector_value(s, selector)
    if got is None:
        return op == "!="
    hit = {"literal": lambda: got == args[0], "starts_with": lambda: got.startswith(args[0]),
           "ends_with": lambda: got.endswith(args[0]), "has_substring": lambda: args[0] in got,
           "one_of": lambda: got in args,
           "monitoring.regex.full_match": lambda: re.fullmatch(args[0], got) is not None}[fn]
    if op == "=":
        return hit()
    if op == "!=":
        return not hit()
    if op == ":":
        return args[0] in got if fn == "literal" else hit()
    a, b = (float(got), float(args[0])) if _numeric(got, args[0]) else (got, args[0])
    return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]


def _numeric(*values: str) -> bool:
    try:
        [float(v) for v in values]
        return True
    except ValueError:
        return False


def pinned_metric_type(node: tuple) -> str | None:
    """The one metric type a ListTimeSeries filter pins (a top-level ``metric.type = "..."`` term)."""
    terms = node[1] if node[0] == "and" else [node]
    found = {t[3][1][0] for t in terms
             if t[0] == "cmp" and t[1] == "metric.type" and t[2] == "=" and t[3][0] == "literal"}
    return found.pop() if len(found) == 1 else None


# -- alignment ---------------------------------------------------------------------------------
def align(s: Series, start: int, end: int, aligner: Aligner, period: int) -> tuple[np.ndarray, ...]:
    """(end times, start times, values) newest first, plus the output kind and value type."""
    t, v = s.times, s.values
    if s.kind == CUMULATIVE and aligner in DELTA_ONLY:
        prev = np.concatenate([[0], v[:-1]]).astype(np.float64)
        v = np.where(v >= prev, v - prev, v).astype(np.float64)  # a reset counts from zero
        v[:1] = 0.0
    keep = (t == end) if start == end else (t > start) & (t <= end)
    t, v = t[keep], v[keep]
    if aligner == Aligner.ALIGN_NONE:
        if s.kind == GAUGE:
            starts = t
        elif s.kind == DELTA:
            step = int(np.median(np.diff(s.times))) if len(s.times) > 1 else 60 * NS
            starts = np.concatenate([[t[0] - step], t[:-1]]) if len(t) else t
        else:
            starts = np.full(len(t), s.times[0])
        return t[::-1], starts[::-1], v[::-1], s.kind, s.value_type
    if not len(t):
        return t, t, v, GAUGE, s.value_type
    k = (end - t) // period  # period k covers (end - (k+1)P, end - kP]; t ascending -> k non-increasing
    first = np.concatenate([[0], np.flatnonzero(np.diff(k)) + 1])
    counts = np.diff(np.append(first, len(t)))
    vf = v.astype(np.float64)
    kind, vtype = GAUGE, s.value_type
    if aligner == Aligner.ALIGN_MAX:
        out = np.maximum.reduceat(v, first)
    elif aligner == Aligner.ALIGN_MIN:
        out = np.minimum.reduceat(v, first)
    elif aligner == Aligner.ALIGN_MEAN:
        out, vtype = np.add.reduceat(vf, first) / counts, DOUBLE
    elif aligner == Aligner.ALIGN_COUNT:
        out, vtype = counts.astype(np.int64), INT64
    elif aligner == Aligner.ALIGN_RATE:
        out, vtype = np.add.reduceat(vf, first) / (period / NS), DOUBLE
    else:  # ALIGN_SUM, ALIGN_DELTA
        out = np.add.reduceat(v if s.kind == DELTA else vf, first)
        kind = DELTA if s.kind in (DELTA, CUMULATIVE) else GAUGE
        vtype = s.value_type if s.kind == DELTA else DOUBLE if s.kind == CUMULATIVE else s.value_type
    ends = end - k[first] * period
    starts = ends if kind == GAUGE else ends - period
    return ends[::-1], starts[::-1], out[::-1], kind, vtype


def timestamp_ns(ts: Any) -> int:
    """A protobuf ``Timestamp`` (ns since the epoch) or ``Duration`` (ns) as an int."""
    return int(ts.seconds) * NS + int(ts.nanos)


def to_ns(times: Any) -> np.ndarray:
    """Datetimes (naive taken as UTC) as an int64 ns array."""
    index = pd.DatetimeIndex(pd.to_datetime(times, utc=True))
    return index.as_unit("ns").asi8.astype(np.int64)


# -- points, encoded vectorized ----------------------------------------------------------------
# Building ~10^5 Point messages one by one costs seconds; their wire format is simple enough to emit
# with numpy: TimeSeries.points (field 5) of Point{interval(1): TimeInterval{start_time(1), end_time(2)},
# value(2): TypedValue{bool_value(1) | int64_value(2) | double_value(3)}}, Timestamp{seconds(1), nanos(2)}.
_Part = tuple[np.ndarray, np.ndarray]  # (bytes [n, w], which of them are present [n, w])
_SHIFTS = np.arange(0, 70, 7, dtype=np.uint64)


def _const(byte: int, n: int, present: np.ndarray | None = None) -> _Part:
    return np.full((n, 1), byte, dtype=np.uint8), (np.ones((n, 1), bool) if present is None else present[:, None])


def _varint(x: np.ndarray, present: np.ndarray | None = None) -> _Part:
    u = x.astype(np.int64).view(np.uint64)
    size = 1 + ((u[:, None] >> _SHIFTS[1:]) != 0).sum(axis=1)
    cols = np.arange(len(_SHIFTS))[None, :]
    data = ((u[:, None] >> _SHIFTS) & np.uint64(0x7F)).astype(np.uint8) | ((cols < size[:, None] - 1) << 7).astype(np.uint8)
    mask = cols < size[:, None]
    return data, mask if present is None else mask & present[:, None]


def _message(tag: int, parts: list[_Part]) -> list[_Part]:
    """A length-delimited field holding ``parts`` (every message here is under 128 bytes: a one-byte length)."""
    n = len(parts[0][0])
    size = sum(m.sum(axis=1) for _, m in parts).astype(np.uint8)
    return [_const(tag, n), (size[:, None], np.ones((n, 1), bool)), *parts]


def _timestamp(ns: np.ndarray) -> list[_Part]:
    seconds, nanos = np.divmod(ns, NS)
    n, has_nanos = len(ns), nanos != 0
    return [_const(0x08, n), _varint(seconds), _const(0x10, n, has_nanos), _varint(nanos, has_nanos)]


def encode_points(ends: np.ndarray, starts: np.ndarray, vals: np.ndarray, vtype: int) -> bytes:
    """The serialized ``TimeSeries.points`` field for these points (merged into a ``TimeSeries``)."""
    n = len(ends)
    if vtype == DOUBLE:
        value = [_const(0x19, n), (np.ascontiguousarray(vals, dtype="<f8").view(np.uint8).reshape(n, 8),
                                   np.ones((n, 8), bool))]
    else:  # int64_value (2) or bool_value (1), both varints
        value = [_const(0x10 if vtype == INT64 else 0x08, n), _varint(np.asarray(vals).astype(np.int64))]
    interval = _message(0x0A, _message(0x0A, _timestamp(starts)) + _message(0x12, _timestamp(ends)))
    parts = _message(0x2A, interval + _message(0x12, value))
    return np.hstack([d for d, _ in parts])[np.hstack([m for _, m in parts])].tobytes()


def fill_time_series(ts: Any, s: Series, ends: np.ndarray, starts: np.ndarray, vals: np.ndarray, kind: int,
                     vtype: int, headers: bool) -> None:
    """Write series ``s`` into the ``TimeSeries`` message ``ts``: its labels and metadata, the aligned output's
    kind and value type, and (unless ``headers``, the HEADERS view) the points ``align`` gave."""
    ts.metric.type = s.metric_type
    ts.metric.labels.update(s.metric_labels)
    ts.resource.type = s.resource_type
    ts.resource.labels.update(s.resource_labels)
    if s.system_labels:
        ts.metadata.system_labels.update(s.system_labels)
    if s.user_labels:
        ts.metadata.user_labels.update(s.user_labels)
    ts.metric_kind, ts.value_type, ts.unit = kind, vtype, s.unit
    if not headers:
        ts.MergeFromString(encode_points(ends, starts, vals, vtype))
