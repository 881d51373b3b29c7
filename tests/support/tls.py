"""A test CA and a server certificate for 127.0.0.1, written where a registry can read
them (an https registry is ``new_registry(scheme="https", tls=server_files(...))``)."""

from __future__ import annotations

from pathlib import Path

import trustme


def server_files(folder: Path, ca_file: str | None = "site-ca.pem") -> tuple[Path, Path]:
    """The certificate and key files of a server at 127.0.0.1 / localhost, signed by a new
    CA whose certificate goes to ``folder / ca_file`` (when named)."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_path, key_path = folder / "server.pem", folder / "server.key"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    if ca_file:
        ca.cert_pem.write_to_path(str(folder / ca_file))
    return cert_path, key_path
