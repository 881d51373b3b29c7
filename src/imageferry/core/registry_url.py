"""Registry addresses as cfg.yaml and the command line write them: scheme and host only."""

from __future__ import annotations

from urllib.parse import urlsplit

from imageferry.core.lazydata import quick_dataclass
from imageferry.core.reference import check_host


@quick_dataclass(frozen=True)
class RegistryAddress:
    scheme: str  # "http" or "https"
    host: str  # host[:port] as used in image references

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}"


def parse_registry_url(text: str) -> RegistryAddress:
    """``http://host:port``, ``https://host`` or a bare ``host[:port]``.

    A bare host means https, except loopback hosts, which mean http.
    """
    text = text.strip().rstrip("/")
    if has_userinfo(text):
        raise ValueError(
            f"the registry address {redact_url(text)} must not contain a user or password; "
            "put them in cfg.yaml's 'user' and 'password' keys for that registry, "
            "or run 'docker login' for its host"
        )
    if "://" not in text:
        host = text
        bare = host.split(":")[0]
        scheme = "http" if bare in ("localhost", "127.0.0.1", "[::1]") else "https"
    else:
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"'{text}': the scheme must be http or https")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            namespace = parts.path.strip("/")
            hint = f"; put the namespace in 'repository: {namespace}'" if namespace else ""
            raise ValueError(
                f"'{text}': a registry address is only scheme://host[:port], without a path{hint}"
            )
        scheme, host = parts.scheme, parts.netloc
    try:
        check_host(host)
    except Exception as exc:
        raise ValueError(str(exc)) from None
    return RegistryAddress(scheme, host)


def has_userinfo(text: str) -> bool:
    """True for ``http://user:pass@host`` or ``user@host`` (a credential in an address)."""
    netloc = text.split("://", 1)[-1].split("/", 1)[0]
    return "@" in netloc


def redact_url(text: str) -> str:
    """``text`` with whatever stands before ``@`` in its host part replaced by ``***``."""
    scheme, sep, rest = text.rpartition("://")
    netloc, slash, path = rest.partition("/")
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    return f"{scheme}{sep}{netloc}{slash}{path}"
