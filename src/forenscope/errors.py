"""One exception hierarchy. Single calls raise; batch paths store errors as values (ErrorInfo)."""

from __future__ import annotations


class ForenscopeError(Exception):
    """Base class of every error Forenscope raises on purpose."""


class InputError(ForenscopeError):
    """The input is not something we can analyse (wrong type, missing file, bad URL)."""


class ImageDecodeError(InputError):
    """The bytes are not a decodable image (zero bytes, truncated, not an image)."""


class ImageTooLargeError(InputError):
    """The image exceeds the byte or pixel limits; raised before decoding (decompression bombs)."""


class UnknownExpertError(ForenscopeError, KeyError):
    """No expert is registered under this name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown expert"


class MissingDependencyError(ForenscopeError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, feature: str, package: str, extra: str) -> None:
        super().__init__(
            f"{feature} needs the optional package '{package}': pip install 'forenscope[{extra}]'"
        )
        self.extra = extra


class ModelError(ForenscopeError):
    """A model could not be found, fetched, verified or loaded."""


class ConfigError(ForenscopeError):
    """Invalid configuration (unknown keys, bad values)."""
