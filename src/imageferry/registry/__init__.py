"""OCI distribution client: transport, auth, credentials, blobs and manifests."""

from imageferry.registry.client import Registry

__all__ = ["Registry"]
