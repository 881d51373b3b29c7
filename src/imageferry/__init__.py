"""imageferry: move container images between registries without Docker."""

__version__ = "0.1.0"

__all__ = ["__version__"]
