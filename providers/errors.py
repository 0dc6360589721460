"""Typed provider errors. Each cloud's ``client.py`` translates its SDK's errors into these."""

from __future__ import annotations


class ProviderError(Exception):
    """A cloud call failed. ``hint`` says what the user can do about it."""

    def __init__(self, message: str, *, hint: str | None = None, code: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.hint = hint
        self.code = code
        self.status = status  # the HTTP status where the API answered one

    def one_line(self) -> str:
        text = str(self).splitlines()[0] if str(self) else type(self).__name__
        return f"{text} (hint: {self.hint})" if self.hint else text


class ConfigurationError(ProviderError):
    """The local configuration cannot work (unknown profile, no region): fix it before retrying."""


class AuthError(ProviderError):
    """Missing, expired or insufficient credentials."""


class Throttled(ProviderError):
    """The API refused for rate; raised only once the client's retries are spent."""


class NotFound(ProviderError):
    """The resource or API does not exist (here)."""


class Unsupported(ProviderError):
    """The provider cannot do this at all."""
