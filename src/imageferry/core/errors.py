"""The one exception tree of imageferry.

ImageFerryError                 anything the user can act on; ``str()`` is the message
├── ConfigError                 cfg.yaml is wrong (file, key path, what is allowed)
├── InputError                  an image list line or a CLI argument is wrong
├── RegistryError               a registry answered badly or could not be reached
│   ├── AuthError               credentials refused (401/403)
│   └── NotFoundError           manifest or blob unknown (404)
├── DigestMismatchError         bytes did not match the digest they were fetched for
├── UnsupportedManifestError    schema 1, unknown media types
├── PackageError                an offline package is missing, damaged or unsuitable
└── Cancelled                   the user pressed stop / Ctrl-C

Errors carry what callers branch on (``temporary``, ``status``, ``retry_after``).
Messages never contain credentials: URLs are redacted where they are built.
"""

from __future__ import annotations


class ImageFerryError(Exception):
    """Base of every error imageferry raises on purpose."""

    temporary: bool = False
    retry_after: float | None = None
    # set when a retry policy gave up on it: an enclosing operation does not retry it again
    retried_out: bool = False


class ConfigError(ImageFerryError):
    pass


class InputError(ImageFerryError):
    pass


class RegistryError(ImageFerryError):
    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        temporary: bool = False,
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.temporary = temporary
        self.retry_after = retry_after
        self.code = code


class AuthError(RegistryError):
    pass


class NotFoundError(RegistryError):
    pass


class DigestMismatchError(ImageFerryError):
    # A corrupted stream is worth fetching again.
    temporary = True

    def __init__(self, message: str, *, expected: str, actual: str) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class UnsupportedManifestError(ImageFerryError):
    pass


class Cancelled(ImageFerryError):
    def __init__(self, message: str = "stopped by the user") -> None:
        super().__init__(message)


class PackageError(ImageFerryError):
    """An offline package is missing, damaged, or does not fit the request."""
