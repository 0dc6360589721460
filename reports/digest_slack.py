"""The Slack renderer: a digest as one Block Kit message (``{"text": fallback, "blocks": [...]}``).

Layout: a header, a context line (audience, window, clouds), the totals as section fields, one section per
top finding, then what was applied, what is due and what could not be read. Long lists end in "…and N more"
so a message always keeps within Slack's documented Block Kit limits (``check_limits`` lists every limit a
message breaks; the channels refuse to send such a message).

Cloud text (names, ids, tags, summaries, reasons) is escaped for mrkdwn: ``&``, ``<`` and ``>`` become
``&amp;`` ``&lt;`` ``&gt;`` (Slack's documented escaping), so a tag cannot hold a mention or a link; names and
ids go into code spans (copyable as typed; a backtick in them is replaced by a look-alike); in free text the
formatting characters ``*`` ``_`` ``~`` become look-alikes where they could open or close formatting, and
a backtick always does. Every mrkdwn text object is ``verbatim`` so Slack links no bare URL or channel name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from providers.model import utc
from reports.digest import CHANGED, NEW, Applied, Digest, Due, Finding, Unread
from reports.model import short_id
from reports.table import usd

# Documented Block Kit limits (docs.slack.dev, reference/block-kit).
MAX_BLOCKS = 50  # blocks in one message
MAX_HEADER_TEXT = 150  # header block, plain_text
MAX_SECTION_TEXT = 3000  # section text (a text object: 1 to 3000 characters)
MAX_FIELDS = 10  # fields of one section
MAX_FIELD_TEXT = 2000  # each field's text
MAX_CONTEXT_ELEMENTS = 10  # elements of one context block
MAX_BLOCK_ID = 255
#: The top-level ``text`` is the notification / screen-reader fallback; Slack truncates it at 40,000
#: characters, and its guidance is to keep it far shorter: ours stays under this.
MAX_FALLBACK_TEXT = 4000

ELLIPSIS = "…"
_NEWLINES = re.compile(r"[\r\n\t\v\f\x85\u2028\u2029]+")
_CONTROL = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
# A formatting character next to a non-alphanumeric character (or the text's edge) can open or close
# formatting; between two letters or digits (``snake_case``) it cannot.
_FORMATTING = re.compile(r"[*_~](?![^\W_])|(?<![^\W_])[*_~]")
_LOOKALIKE = {"*": "\u2217", "_": "\u02cd", "~": "\u223c", "`": "\u02cb"}  # ∗ ˍ ∼ ˋ

# Caps on one cloud value (escaped), so a finding's section stays far below MAX_SECTION_TEXT.
_NAME, _SUMMARY, _SHORT = 150, 300, 80
_LIST_ITEMS = 10  # lines in the applied / due / unread sections before "…and N more"


# --- escaping ---------------------------------------------------------------------------------------------

def _clip_escaped(raw: str, limit: int, escape: Any) -> str:
    """``escape(raw)``, cut (before escaping, so no entity is split) to at most ``limit`` characters."""
    text = escape(raw)
    if len(text) <= limit:
        return text
    lo, hi = 0, len(raw)
    while lo < hi:  # the longest prefix whose escaped form, plus the ellipsis, fits
        mid = (lo + hi + 1) // 2
        if len(escape(raw[:mid])) + 1 <= limit:
            lo = mid
        else:
            hi = mid - 1
    return escape(raw[:lo]) + ELLIPSIS


def _escape_text(value: str) -> str:
    text = _NEWLINES.sub(" ", value).translate(_CONTROL)
    text = _FORMATTING.sub(lambda m: _LOOKALIKE[m.group()], text)
    return text.replace("`", _LOOKALIKE["`"])


def slack_text(value: str | None, limit: int = _SUMMARY) -> str:
    """Cloud free text for mrkdwn: one line, ``&<>`` escaped, formatting characters neutralised;
    None and "" become ``-``."""
    if not value:
        return "-"
    return _clip_escaped(value, limit, _escape_text)


def _escape_code(value: str) -> str:
    return _NEWLINES.sub(" ", value).translate(_CONTROL).replace("`", _LOOKALIKE["`"])


def slack_code(value: str | None, limit: int = _NAME) -> str:
    """A cloud name or id as an inline code span (Slack applies no formatting inside one); None -> ``-``."""
    if not value:
        return "-"
    return f"`{_clip_escaped(value, limit, _escape_code)}`"


# --- blocks -----------------------------------------------------------------------------------------------

def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(_fit(text, MAX_SECTION_TEXT))}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(_fit(text, MAX_SECTION_TEXT))]}


_DIVIDER: dict[str, Any] = {"type": "divider"}


def _fit(text: str, limit: int) -> str:
    """A last guard for text we assembled from already-escaped parts: cut whole lines to fit."""
    if len(text) <= limit:
        return text
    lines = text.split("\n")
    while lines and len("\n".join(lines)) + 2 > limit:
        lines.pop()
    return "\n".join(lines + [ELLIPSIS])


def _iso(value: datetime) -> str:
    return utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _more(n: int, what: str = "") -> str:
    return f"{ELLIPSIS}and {n:,} more{' ' + what if what else ''}"


def _resource(name: str | None, resource_id: str) -> str:
    shown = short_id(resource_id, name)
    if not name:
        return slack_code(shown or resource_id)
    return slack_code(name) if not shown else f"{slack_code(name)} ({slack_code(shown)})"


_BADGE = {NEW: " · *new*", CHANGED: " · *changed*"}


def finding_text(f: Finding) -> str:
    """One finding as mrkdwn: $/month, kind and status; resource; where; confidence, risk, owner; summary."""
    where = " · ".join(x for x in (slack_text(f.cloud, _SHORT), slack_code(f.region, _SHORT), slack_code(f.instance_type, _SHORT)
                                   if f.instance_type else "") if x)
    who = "".join((f" · team {slack_text(f.team, _SHORT)}" if f.team else "",
                   f" · owner {slack_text(f.owner, _SHORT)}" if f.owner else ""))
    advice = "" if f.actionable else " · advice only"
    return "\n".join((
        f"*{usd(f.monthly_savings_usd)}/month* · {slack_text(f.kind, _SHORT)}{_BADGE.get(f.status, '')}",
        f"{_resource(f.name, f.resource_id)} · {where}",
        f"confidence {f.confidence:.0%} · risk {slack_text(f.risk, _SHORT)}{who}{advice}",
        slack_text(f.summary, _SUMMARY),
    ))


def _applied_line(a: Applied) -> str:
    change = f" ({slack_text(a.before, _SHORT)} → {slack_text(a.after, _SHORT)})" if a.before or a.after else ""
    return (f"• {slack_text(a.kind, _SHORT)} {slack_code(short_id(a.resource_id) or a.resource_id)} "
            f"({slack_text(a.cloud, _SHORT)}): {slack_text(a.status, _SHORT)} at {_iso(a.at)} by {slack_code(a.actor, _SHORT)}{change}")


def _due_line(d: Due) -> str:
    return (f"• {slack_text(d.kind, _SHORT)} {slack_code(short_id(d.resource_id) or d.resource_id)} "
            f"({slack_text(d.cloud, _SHORT)}) after {_iso(d.act_after)}")


def _unread_line(u: Unread) -> str:
    where = " ".join(x for x in (slack_text(u.cloud, _SHORT), slack_code(u.region, _SHORT) if u.region else "",
                                 slack_code(short_id(u.resource_id) or u.resource_id) if u.resource_id else "") if x)
    hint = f" Fix: {slack_text(u.hint)}" if u.hint else ""
    return f"• {where}: {slack_text(u.what, _SHORT)}: {slack_text(u.reason)}.{hint}"


def _list_section(title: str, lines: Sequence[str]) -> dict[str, Any]:
    """A titled bullet list, cut to _LIST_ITEMS lines and to the section limit, ending in "…and N more"."""
    head = f"*{title}* ({len(lines):,})"
    room = MAX_SECTION_TEXT - len(head) - len(_more(len(lines))) - 2
    shown: list[str] = []
    for line in lines[:_LIST_ITEMS]:
        if sum(len(s) + 1 for s in shown) + len(line) + 1 > room:
            break
        shown.append(line)
    rest = len(lines) - len(shown)
    return _section("\n".join([head, *shown] + ([_more(rest)] if rest else [])))


def _totals(d: Digest) -> dict[str, Any]:
    new = sum(f.status == NEW for f in d.findings)
    changed = sum(f.status == CHANGED for f in d.findings)
    fields = [("Monthly savings", usd(d.monthly_savings_usd)), ("Findings", f"{len(d.findings):,}"),
              ("New", f"{new:,}"), ("Changed", f"{changed:,}"), ("Applied", f"{len(d.applied):,}"),
              ("Due", f"{len(d.due):,}"), ("Unread", f"{len(d.unread):,}")]
    return {"type": "section", "fields": [_mrkdwn(f"*{label}*\n{value}") for label, value in fields]}


def _fallback(d: Digest) -> str:
    new = sum(f.status == NEW for f in d.findings)
    text = (f"costagent digest for {slack_text(d.audience, 200)}: {usd(d.monthly_savings_usd)}/month in savings "
            f"across {len(d.findings):,} findings ({new:,} new); {len(d.applied):,} applied, {len(d.due):,} due, "
            f"{len(d.unread):,} unread.")
    return ("[DEMO] " if d.demo else "") + text


def render_slack(digest: Digest, *, top_n: int = 10) -> dict[str, Any]:
    """The digest as a Block Kit message: ``{"text": fallback, "blocks": [...]}`` within Slack's limits.

    ``top_n`` findings get a section each (fewer where the 50-block limit leaves less room); the rest are
    counted in an "…and N more" line."""
    d = digest
    title = f"costagent digest · {d.window_start:%Y-%m-%d} → {d.window_end:%Y-%m-%d}"
    title += " (DEMO)" if d.demo else ""
    about = (f"For {slack_text(d.audience, 200)} · {_iso(d.window_start)} to {_iso(d.window_end)} · clouds "
             f"{', '.join(slack_text(c, _SHORT) for c in d.clouds) or '-'} · generated {_iso(d.generated_at)}"
             + (" · *DEMO data*" if d.demo else ""))
    head: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:MAX_HEADER_TEXT], "emoji": False}},
        _context(about), _totals(d)]
    tail: list[dict[str, Any]] = []
    if d.applied:
        tail.append(_list_section("Applied since the last digest", [_applied_line(a) for a in d.applied]))
    if d.due:
        tail.append(_list_section("Due (acts after its grace period)", [_due_line(x) for x in d.due]))
    if d.unread:
        tail.append(_list_section("Could not read", [_unread_line(u) for u in d.unread]))
    if d.is_empty:
        return {"text": _fallback(d), "blocks": head + [
            _section("Nothing to report: no findings, nothing applied or due, nothing unread.")]}

    body: list[dict[str, Any]] = []
    if d.findings:
        # head + divider + title + findings + "more" + divider + tail <= MAX_BLOCKS
        room = MAX_BLOCKS - len(head) - len(tail) - 4
        shown = d.findings[:max(0, min(top_n, room))]
        body += [_DIVIDER, _section(f"*Top {len(shown):,} of {len(d.findings):,} findings*, by monthly savings")]
        body += [_section(finding_text(f)) for f in shown]
        rest = d.findings[len(shown):]
        if rest:
            body.append(_context(_more(len(rest), "findings in the full report")))
    if tail:
        body.append(_DIVIDER)
    return {"text": _fallback(d), "blocks": head + body + tail}


# --- limits -----------------------------------------------------------------------------------------------

def _text_of(obj: Any) -> str | None:
    return obj.get("text") if isinstance(obj, Mapping) and isinstance(obj.get("text"), str) else None


def _check_text(where: str, obj: Any, limit: int, problems: list[str]) -> None:
    text = _text_of(obj)
    if text is None:
        problems.append(f"{where}: no text object")
    elif not text:
        problems.append(f"{where}: empty text (at least 1 character)")
    elif len(text) > limit:
        problems.append(f"{where}: text of {len(text):,} characters (at most {limit:,})")


def _check_block(i: int, block: Any, problems: list[str]) -> None:
    where = f"block {i}"
    if not isinstance(block, Mapping) or "type" not in block:
        problems.append(f"{where}: not a block")
        return
    kind = block["type"]
    where = f"block {i} ({kind})"
    if len(str(block.get("block_id", ""))) > MAX_BLOCK_ID:
        problems.append(f"{where}: block_id over {MAX_BLOCK_ID} characters")
    if kind == "header":
        _check_text(where, block.get("text"), MAX_HEADER_TEXT, problems)
        if isinstance(block.get("text"), Mapping) and block["text"].get("type") != "plain_text":
            problems.append(f"{where}: header text must be plain_text")
    elif kind == "section":
        fields = block.get("fields")
        if "text" not in block and not fields:
            problems.append(f"{where}: neither text nor fields")
        if "text" in block:
            _check_text(where, block["text"], MAX_SECTION_TEXT, problems)
        if fields is not None:
            if len(fields) > MAX_FIELDS:
                problems.append(f"{where}: {len(fields)} fields (at most {MAX_FIELDS})")
            for j, field in enumerate(fields):
                _check_text(f"{where} field {j}", field, MAX_FIELD_TEXT, problems)
    elif kind == "context":
        elements = block.get("elements") or []
        if not elements or len(elements) > MAX_CONTEXT_ELEMENTS:
            problems.append(f"{where}: {len(elements)} elements (1 to {MAX_CONTEXT_ELEMENTS})")
        for j, element in enumerate(elements):
            if isinstance(element, Mapping) and element.get("type") in ("mrkdwn", "plain_text"):
                _check_text(f"{where} element {j}", element, MAX_SECTION_TEXT, problems)


def check_limits(message: Mapping[str, Any]) -> list[str]:
    """Every documented Block Kit limit ``message`` breaks, one line each (empty when it may be sent)."""
    problems: list[str] = []
    text = message.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.append("message: no fallback text (the top-level text shown in notifications)")
    elif len(text) > MAX_FALLBACK_TEXT:
        problems.append(f"message: fallback text of {len(text):,} characters (at most {MAX_FALLBACK_TEXT:,})")
    blocks: Iterable[Any] = message.get("blocks") or []
    blocks = list(blocks)
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"message: {len(blocks)} blocks (at most {MAX_BLOCKS})")
    for i, block in enumerate(blocks):
        _check_block(i, block, problems)
    return problems


__all__ = [
    "MAX_BLOCKS",
    "MAX_FALLBACK_TEXT",
    "MAX_FIELDS",
    "MAX_FIELD_TEXT",
    "MAX_HEADER_TEXT",
    "MAX_SECTION_TEXT",
    "check_limits",
    "finding_text",
    "render_slack",
    "slack_code",
    "slack_text",
]
