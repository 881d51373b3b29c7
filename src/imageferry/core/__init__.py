"""Values and rules with no I/O: references, digests, manifests, events, errors."""
