"""Errors of the LLM backend, part of the project's ForenscopeError hierarchy."""

from __future__ import annotations

from ..errors import ForenscopeError


class LLMError(ForenscopeError):
    """A call to the configured LLM endpoint failed (after retries where they apply)."""


class LLMHTTPError(LLMError):
    """The endpoint answered with an HTTP error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class LLMTimeoutError(LLMError):
    """The endpoint did not answer in time (connect or read timeout)."""


class LLMConnectionError(LLMError):
    """The endpoint could not be reached."""


class LLMResponseError(LLMError):
    """The endpoint answered 200 with a body that is not a chat completion."""
