"""Dataclasses built when first instantiated: for value types most runs never make.

Building a dataclass compiles its ``__init__``, ``__repr__``, ``__eq__`` (and, frozen,
``__hash__``, ``__setattr__``, ``__delattr__``) from source: ~0.5 ms each on this
project's machines, about a tenth of a copy's start-up over the ~40 classes a run
imports. Events a run never sends (a rerun with nothing to copy sends no blob progress)
need not pay it. ``lazy_dataclass`` takes the same options as ``dataclass``; the class is
a real dataclass from its first instance on (``dataclasses.fields``, ``replace``, ``==``,
``repr``, ``match``). Type checkers see ``dataclass`` itself: import it as

    if TYPE_CHECKING:
        from dataclasses import dataclass as lazy_dataclass
    else:
        from imageferry.core.lazydata import lazy_dataclass

Not for a class that is subclassed, or whose fields are asked for before an instance
exists (``dataclasses.fields(Class)``).
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, TypeVar

C = TypeVar("C", bound=type)
_LOCK = threading.Lock()


def lazy_dataclass(cls: C | None = None, /, **options: Any) -> Any:
    """``dataclass(cls, **options)``, done when ``cls`` is first instantiated."""

    def wrap(cls: C) -> C:
        def __new__(klass: type, *args: Any, **kwargs: Any) -> Any:
            build(cls, options)
            return object.__new__(klass)

        __new__.__lazy_of__ = cls  # type: ignore[attr-defined]
        cls.__new__ = staticmethod(__new__)  # type: ignore[assignment]
        return cls

    return wrap if cls is None else wrap(cls)


def build(cls: type, options: dict[str, Any]) -> None:
    """Make ``cls`` the dataclass it declares (once, whichever thread comes first).

    The stand-in ``__new__`` stays until ``__init__`` and the rest are in place, so a
    thread that makes an instance meanwhile waits here instead of missing them."""
    with _LOCK:
        stub = cls.__dict__.get("__new__")
        if getattr(getattr(stub, "__func__", None), "__lazy_of__", None) is not cls:
            return  # built already
        dataclasses.dataclass(cls, **options)
        # not ``del``: CPython keeps calling ``__new__`` through the slot, with the arguments
        cls.__new__ = staticmethod(_new)  # type: ignore[assignment]


def _new(klass: type, *args: Any, **kwargs: Any) -> Any:
    return object.__new__(klass)
