"""The digest's JSON form: ``to_dict`` / ``to_json`` and their exact inverse ``from_dict`` / ``from_json``.

The daemon keeps each collect run's digest in the state database as this JSON text and reads it back later
(after a restart too) to deliver it; users may pipe it. So the form is versioned and lossless: reading back
what was written gives an equal ``reports.digest.Digest``.

The form (``format: "costagent-digest"``, ``version``: ``DIGEST_VERSION``):

- money (``Decimal``) is a string in plain decimal notation, exact and with its trailing zeros (``"0.10"``);
  it is read back only from that notation (``-?digits[.digits]``), never from a JSON number (a float is not
  exact). ``Decimal("1E+3")`` is written ``"1000"``: the value is kept, not the exponent.
- date-times are ISO-8601 in UTC with ``Z`` (``2026-11-23T09:00:00Z``, microseconds when there are some).
  Reading accepts any ISO-8601 date-time with a UTC offset and converts it to UTC; a date-time without one
  (naive) is refused, as everywhere in costagent: its instant would be a guess.
- dates are ``YYYY-MM-DD``; tuples are lists; floats are JSON numbers (Python writes the shortest text that
  reads back as the same float); NaN and infinities are refused both ways.
- ``extra`` holds JSON values only (str, int, float, bool, None, lists, objects with string keys). ``to_dict``
  refuses anything else there, tuples included, rather than hand back something different.
- keys are written in a fixed order (``format``, ``version``, then the model's field order).

Reading is strict about shape and forward compatible within a major version: ``format`` must match and the
major version must be 1 (1.x is read; a later minor version's added keys are ignored, as is any unknown key);
every key that version 1.0 writes is required. Values of open-ended text fields (a finding's ``status``, the
``audience``) are not checked against today's vocabulary, so a 1.x writer may add one. Every refusal is a
``DigestFormatError`` (a ``ValueError``) with a one-line message naming the field, e.g.
``digest JSON: findings[3].monthly_savings_usd: 'abc' is not a number``. The ``version`` of the Digest read
back is this module's ``DIGEST_VERSION``: it is the model this code builds, whatever 1.x wrote it.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NoReturn

from providers.model import utc
from reports.digest import DIGEST_VERSION, Applied, Digest, Due, Finding, IdleDay, Unread

FORMAT = "costagent-digest"
READ_MAJOR = int(DIGEST_VERSION.split(".")[0])
HEATMAP_HOURS = 168

# Kinds of scalar value, and the keys of each object in the 1.0 form (every one of them required on reading).
STR, OPT_STR, BOOL, FLOAT, MONEY, DATETIME, DATE = "str", "str|null", "bool", "float", "money", "datetime", "date"
FINDING_KEYS: tuple[tuple[str, str], ...] = (
    ("id", STR), ("kind", STR), ("recommender", STR), ("cloud", STR), ("account", STR), ("region", STR),
    ("resource_id", STR), ("name", OPT_STR), ("instance_type", OPT_STR), ("monthly_savings_usd", MONEY),
    ("confidence", FLOAT), ("risk", STR), ("summary", STR), ("owner", OPT_STR), ("team", OPT_STR),
    ("actionable", BOOL), ("status", STR))
APPLIED_KEYS: tuple[tuple[str, str], ...] = (
    ("action_id", STR), ("kind", STR), ("cloud", STR), ("resource_id", STR), ("status", STR), ("at", DATETIME),
    ("actor", STR), ("before", STR), ("after", STR))
DUE_KEYS: tuple[tuple[str, str], ...] = (("kind", STR), ("cloud", STR), ("resource_id", STR), ("act_after", DATETIME))
UNREAD_KEYS: tuple[tuple[str, str], ...] = (
    ("cloud", STR), ("what", STR), ("reason", STR), ("region", OPT_STR), ("resource_id", OPT_STR), ("hint", OPT_STR))
IDLE_DAY_KEYS: tuple[tuple[str, str], ...] = (("day", DATE), ("idle_gpu_hours", FLOAT), ("idle_usd", MONEY))
DIGEST_SCALARS: tuple[tuple[str, str], ...] = (
    ("generated_at", DATETIME), ("window_start", DATETIME), ("window_end", DATETIME), ("audience", STR),
    ("demo", BOOL))
#: The lists of records in a digest: key, record class, the record's keys.
DIGEST_LISTS: tuple[tuple[str, type, tuple[tuple[str, str], ...]], ...] = (
    ("findings", Finding, FINDING_KEYS), ("applied", Applied, APPLIED_KEYS), ("due", Due, DUE_KEYS),
    ("unread", Unread, UNREAD_KEYS), ("idle_by_day", IdleDay, IDLE_DAY_KEYS))

_MONEY = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_VERSION = re.compile(r"([0-9]+)\.([0-9]+)")
_SURROGATE = re.compile("[\ud800-\udfff]")


class DigestFormatError(ValueError):
    """A digest that cannot be written as, or read from, this JSON form; the message names the field."""


def _fail(path: str, problem: str) -> NoReturn:
    raise DigestFormatError(f"digest JSON: {path}: {problem}" if path else f"digest JSON: {problem}")


def _show(value: Any) -> str:
    """``value`` for a one-line message: its repr (which escapes line breaks), cut to a readable length."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# --- writing ----------------------------------------------------------------------------------------------


def _iso(value: datetime, path: str) -> str:
    try:
        return utc(value).isoformat().replace("+00:00", "Z")
    except (ValueError, AttributeError, TypeError) as exc:
        _fail(path, str(exc) if isinstance(exc, ValueError) else f"{_show(value)} is not a datetime")


def _encode(kind: str, value: Any, path: str) -> Any:
    if kind == MONEY:
        if not isinstance(value, Decimal) or not value.is_finite():
            _fail(path, f"{_show(value)} is not a finite Decimal")
        return format(value, "f")
    if kind == DATETIME:
        return _iso(value, path)
    if kind == DATE:
        if not isinstance(value, date) or isinstance(value, datetime):
            _fail(path, f"{_show(value)} is not a date")
        return value.isoformat()
    if kind == FLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            _fail(path, f"{_show(value)} is not a finite number")
        return float(value)
    return value


def _record_out(record: Any, keys: tuple[tuple[str, str], ...], path: str) -> dict[str, Any]:
    return {key: _encode(kind, getattr(record, key), _at(path, key)) for key, kind in keys}


def _json_out(value: Any, path: str) -> Any:
    """A copy of ``value`` if it is made of JSON values only (so it reads back equal), else a refusal."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            _fail(path, f"{value!r} is not a JSON number")
        return value
    if isinstance(value, list):
        return [_json_out(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for key, v in value.items():
            if not isinstance(key, str):
                _fail(path, f"key {_show(key)} is not a string")
            out[key] = _json_out(v, _at(path, key))
        return out
    _fail(path, f"{type(value).__name__} {_show(value)} is not a JSON value (extra holds str, int, float, bool, "
                "None, lists and string-keyed mappings)")


def to_dict(digest: Digest) -> dict[str, Any]:
    """``digest`` as JSON-ready dicts, lists, strings, numbers and booleans (see the module docstring)."""
    out: dict[str, Any] = {"format": FORMAT, "version": DIGEST_VERSION}
    for key in ("generated_at", "window_start", "window_end"):
        out[key] = _iso(getattr(digest, key), key)
    out["clouds"] = list(digest.clouds)
    out["audience"] = digest.audience
    for key, _cls, keys in DIGEST_LISTS:
        out[key] = [_record_out(r, keys, f"{key}[{i}]") for i, r in enumerate(getattr(digest, key))]
    out["idle_heatmap"] = [_encode(FLOAT, v, f"idle_heatmap[{i}]") for i, v in enumerate(digest.idle_heatmap)]
    out["demo"] = digest.demo
    out["extra"] = _json_out(digest.extra, "extra")
    return out


def to_json(digest: Digest) -> str:
    """``to_dict(digest)`` as JSON text: keys in a fixed order, indented by 2, non-ASCII text as itself, ending
    in a newline. A lone surrogate in cloud text is written as its ``\\uXXXX`` escape, so the text always
    encodes as UTF-8 (for the state database) and still reads back as the same string."""
    text = json.dumps(to_dict(digest), indent=2, ensure_ascii=False, allow_nan=False)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n"


# --- reading ----------------------------------------------------------------------------------------------


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        _fail(path, f"expected an object, got {_type(value)}")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        _fail(path, f"expected a list, got {_type(value)}")
    return value


def _get(obj: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        _fail(_at(path, key), "required key is missing")
    return obj[key]


def _decode(kind: str, value: Any, path: str) -> Any:
    if kind == STR or (kind == OPT_STR and value is not None):
        if not isinstance(value, str):
            _fail(path, f"expected a string, got {_type(value)}")
        return value
    if kind == OPT_STR:
        return None
    if kind == BOOL:
        if not isinstance(value, bool):
            _fail(path, f"expected a boolean, got {_type(value)}")
        return value
    if kind == FLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _fail(path, f"{_show(value)} is not a number")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            _fail(path, f"{_show(value)} is not a finite number")
        return number
    if kind == MONEY:
        if not isinstance(value, str):
            _fail(path, f"{_show(value)} is not a decimal string (money is written as text, e.g. \"12.50\")")
        if not _MONEY.fullmatch(value):
            _fail(path, f"{_show(value)} is not a number")
        return Decimal(value)
    if kind == DATETIME:
        return _datetime(value, path)
    if kind == DATE:
        if not isinstance(value, str) or not _DATE.fullmatch(value):
            _fail(path, f"{_show(value)} is not a date (YYYY-MM-DD)")
        try:
            return date.fromisoformat(value)
        except ValueError:
            _fail(path, f"{_show(value)} is not a date (YYYY-MM-DD)")
    raise AssertionError(kind)


def _datetime(value: Any, path: str) -> datetime:
    if not isinstance(value, str):
        _fail(path, f"{_show(value)} is not an ISO-8601 date-time string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        _fail(path, f"{_show(value)} is not an ISO-8601 date-time")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        _fail(path, f"{_show(value)} has no UTC offset (write it in UTC with a Z)")
    try:
        return utc(parsed)
    except OverflowError:
        _fail(path, f"{_show(value)} is out of range in UTC")


def _record_in(cls: type, value: Any, keys: tuple[tuple[str, str], ...], path: str) -> Any:
    obj = _object(value, path)
    return cls(**{key: _decode(kind, _get(obj, key, path), _at(path, key)) for key, kind in keys})


def _json_in(value: Any, path: str) -> Any:
    """A copy of a JSON value from ``extra``; anything JSON cannot hold (a tuple, a Decimal) is refused."""
    if isinstance(value, float) and not math.isfinite(value):
        _fail(path, f"{value!r} is not a JSON number")
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, list):
        return [_json_in(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                _fail(path, f"key {_show(key)} is not a string")
        return {key: _json_in(v, _at(path, key)) for key, v in value.items()}
    _fail(path, f"{type(value).__name__} {_show(value)} is not a JSON value")


def _check_header(data: Mapping[str, Any]) -> None:
    fmt = _get(data, "format", "")
    if fmt != FORMAT:
        _fail("format", f"{_show(fmt)} is not {FORMAT!r}")
    version = _get(data, "version", "")
    match = _VERSION.fullmatch(version) if isinstance(version, str) else None
    if match is None:
        _fail("version", f"{_show(version)} is not a version such as {DIGEST_VERSION!r}")
    if int(match.group(1)) != READ_MAJOR:
        _fail("version", f"{_show(version)} is a major version this reader does not read (it reads {READ_MAJOR}.x)")


def from_dict(data: Any) -> Digest:
    """The Digest that ``to_dict`` wrote as ``data``; ``DigestFormatError`` names the first field in error."""
    obj = _object(data, "")
    _check_header(obj)
    values: dict[str, Any] = {key: _decode(kind, _get(obj, key, ""), key) for key, kind in DIGEST_SCALARS}
    values["clouds"] = tuple(_decode(STR, v, f"clouds[{i}]")
                             for i, v in enumerate(_list(_get(obj, "clouds", ""), "clouds")))
    for key, cls, keys in DIGEST_LISTS:
        items = _list(_get(obj, key, ""), key)
        values[key] = tuple(_record_in(cls, v, keys, f"{key}[{i}]") for i, v in enumerate(items))
    heatmap = _list(_get(obj, "idle_heatmap", ""), "idle_heatmap")
    if heatmap and len(heatmap) != HEATMAP_HOURS:
        _fail("idle_heatmap", f"has {len(heatmap)} values, not {HEATMAP_HOURS} (hours of a week) or none")
    values["idle_heatmap"] = tuple(_decode(FLOAT, v, f"idle_heatmap[{i}]") for i, v in enumerate(heatmap))
    values["extra"] = _json_in(_object(_get(obj, "extra", ""), "extra"), "extra")
    return Digest(version=DIGEST_VERSION, **values)


def _no_constant(name: str) -> NoReturn:
    _fail("", f"{name} is not a JSON number")


def from_json(text: str | bytes) -> Digest:
    """The Digest that ``to_json`` wrote as ``text``; text that is not JSON is a ``DigestFormatError`` too."""
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        _fail("", f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except UnicodeDecodeError as exc:
        _fail("", f"not UTF-8 text: {exc.reason} at byte {exc.start}")
    except RecursionError:
        _fail("", "nested too deeply")
    return from_dict(data)


__all__ = ["FORMAT", "DigestFormatError", "from_dict", "from_json", "to_dict", "to_json"]
