"""Helpers for tests, the demo and the benchmarks: real local registries and sample images.

Nothing here is used by the product itself; it talks only to 127.0.0.1.
"""
