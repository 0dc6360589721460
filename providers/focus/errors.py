"""The one error of billing ingestion: a file that cannot be read, named with its place."""

from __future__ import annotations

from providers.errors import ProviderError


class BillingError(ProviderError):
    """A billing file (or path) could not be read at all.

    ``file`` is the name the user gave (a local path or an ``s3://`` URL), ``line`` the 1-based line
    where that is known. The message is one line and starts with the file.
    """

    def __init__(self, file: str, reason: str, *, line: int | None = None, hint: str | None = None) -> None:
        place = f"{file}:{line}" if line else file
        first = (reason.strip().splitlines() or ["unreadable"])[0]
        super().__init__(f"billing: {place}: {first}", hint=hint)
        self.file = file
        self.line = line
        self.reason = first
