"""Renderers for the audit report: ``render(report, fmt)`` with fmt "table", "json" or "markdown"."""

from __future__ import annotations

from collections.abc import Callable

from reports.json_report import render_json
from reports.markdown import render_markdown
from reports.model import AuditReport
from reports.table import render_table

__all__ = ["render"]

_RENDERERS: dict[str, Callable[[AuditReport], str]] = {
    "table": render_table,
    "json": render_json,
    "markdown": render_markdown,
}


def render(report: AuditReport, fmt: str) -> str:
    """Render ``report`` in ``fmt``; ValueError names the allowed formats for anything else."""
    try:
        renderer = _RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown report format {fmt!r}; choose one of: {', '.join(_RENDERERS)}") from None
    return renderer(report)
