"""Log lines for the daemon: one JSON object per line on stderr, each with the run id of the job run that wrote it.

The run id and job live in context variables that the job runner sets, so every module's ordinary
``log.info("event=... key=value")`` line comes out stamped; ``key=value`` pairs in the message are also lifted
into fields (``event``, ``plan``, ``channel`` ...) for log pipelines to filter on. A dozen lines on the
standard library's ``json`` and ``logging``: no logging framework needed.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

run_id: contextvars.ContextVar[str] = contextvars.ContextVar("costagent_run_id", default="")
job: contextvars.ContextVar[str] = contextvars.ContextVar("costagent_job", default="")

_PAIR = re.compile(r"(?:^|\s)([a-z_]+)=([^\s=]+)")
_RESERVED = {"time", "level", "logger", "message", "run_id", "job", "error"}


class Stamp(logging.Filter):
    """Adds ``run_id`` and ``job`` to every record (the process's own id outside a job run)."""

    def __init__(self, process_run_id: str) -> None:
        super().__init__()
        self.process_run_id = process_run_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = run_id.get() or self.process_run_id
        record.job = job.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(), "logger": record.name, "message": message,
            "run_id": getattr(record, "run_id", ""),
        }
        if getattr(record, "job", ""):
            out["job"] = record.job  # type: ignore[attr-defined]
        for key, value in _PAIR.findall(message):
            if key not in _RESERVED:
                out.setdefault(key, value)
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure(fmt: str, process_run_id: str, level: int = logging.INFO) -> Callable[[], None]:
    """Route every logger to stderr as JSON lines (``json``) or readable text (``text``); returns a function
    that puts the previous handlers back."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(Stamp(process_run_id))
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s run=%(run_id)s %(job)s %(message)s"))
    root = logging.getLogger()
    before, before_level = list(root.handlers), root.level
    for old in before:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)

    def restore() -> None:
        root.removeHandler(handler)
        for old in before:
            root.addHandler(old)
        root.setLevel(before_level)

    for noisy in ("botocore", "boto3", "urllib3", "werkzeug", "azure", "google", "apscheduler.executors",
                  "matplotlib", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return restore


__all__ = ["JsonFormatter", "Stamp", "configure", "job", "run_id"]
