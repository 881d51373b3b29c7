"""Dataclasses that cost less to build: value types are made at every start-up.

Building a dataclass compiles its ``__init__``, ``__repr__``, ``__eq__`` (and, frozen,
``__hash__``, ``__setattr__``, ``__delattr__``; with ``order`` four comparisons) from
source: ~0.5 ms a class on this project's machines, about a tenth of a copy's start-up
over the ~40 classes a run imports.

- ``quick_dataclass`` (same options as ``dataclass``, but for ``slots``) compiles only
  ``__init__`` and, frozen, the guards; ``__repr__``, ``__eq__``, ``__hash__`` and the
  comparisons are shared functions over the fields, with the same results as the
  generated ones.
- ``lazy_dataclass`` does that at the class's first instance: events a run never sends
  (a rerun with nothing to copy sends no blob progress) never pay it. Not for a class that
  is subclassed, or whose fields are asked for before an instance exists.

Either is a real dataclass (``dataclasses.fields``, ``replace``, ``match``); type checkers
know them as dataclass makers (``typing.dataclass_transform``).
"""

from __future__ import annotations

import dataclasses
import reprlib
import threading
from collections.abc import Callable
from operator import attrgetter
from typing import Any, TypeVar, dataclass_transform

C = TypeVar("C", bound=type)
_LOCK = threading.Lock()


@dataclass_transform(field_specifiers=(dataclasses.field, dataclasses.Field))
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
        quick_dataclass(cls, **options)
        # not ``del``: CPython keeps calling ``__new__`` through the slot, with the arguments
        cls.__new__ = staticmethod(_new)  # type: ignore[assignment]


def _new(klass: type, *args: Any, **kwargs: Any) -> Any:
    return object.__new__(klass)


@dataclass_transform(field_specifiers=(dataclasses.field, dataclasses.Field))
def quick_dataclass(cls: C | None = None, /, **options: Any) -> Any:
    """``dataclass(cls, **options)`` with shared ``__repr__``, ``__eq__``, ``__hash__`` and
    comparisons instead of compiled ones (``unsafe_hash`` and ``eq=False`` as usual)."""

    def wrap(cls: type) -> Any:
        if options.get("unsafe_hash") or options.get("eq") is False:
            return dataclasses.dataclass(cls, **options)
        if options.get("slots"):
            raise TypeError(f"{cls.__name__}: quick_dataclass does not make slots classes")
        own = set(cls.__dict__)
        hashed = cls.__dict__.get("__hash__", dataclasses.MISSING)
        # dataclass's rule: an __eq__ of the class's own leaves __hash__ None, not explicit
        explicit_hash = hashed is not dataclasses.MISSING and not (
            hashed is None and "__eq__" in own
        )
        rest = {k: v for k, v in options.items() if k not in ("repr", "order")}
        if cls.__doc__ is None:  # else dataclass writes the signature there (inspect: slow)
            cls.__doc__ = f"{cls.__name__}: {', '.join(cls.__dict__.get('__annotations__', ()))}"
        made: type = dataclasses.dataclass(cls, repr=False, eq=False, **rest)
        want_repr, order = options.get("repr", True), options.get("order", False)
        frozen = bool(options.get("frozen"))
        _add_methods(made, own, want_repr, order, frozen, explicit_hash)
        return made

    return wrap if cls is None else wrap(cls)


def _add_methods(
    cls: type, own: set[str], want_repr: bool, order: bool, frozen: bool, explicit_hash: bool
) -> None:
    """What ``dataclass`` would add: a method the class defines itself stays."""
    fields = dataclasses.fields(cls)
    compared = _values([f.name for f in fields if f.compare])
    methods: dict[str, Any] = {"__eq__": _comparison(compared, lambda a, b: a == b)}
    if want_repr:
        methods["__repr__"] = _repr([f.name for f in fields if f.repr])
    if frozen and not explicit_hash:
        hashed = _values([f.name for f in fields if (f.compare if f.hash is None else f.hash)])
        methods["__hash__"] = lambda self: hash(hashed(self))
    elif not explicit_hash:
        cls.__hash__ = None  # type: ignore[assignment]  # eq without frozen: unhashable
    if order:
        for name, test in _ORDER.items():
            if name in own:
                raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")
            methods[name] = _comparison(compared, test)
    for name, method in methods.items():
        if name not in own or name == "__hash__":  # (__hash__: only when not explicit)
            method.__qualname__ = f"{cls.__qualname__}.{name}"
            setattr(cls, name, method)


_ORDER: dict[str, Callable[[tuple[Any, ...], tuple[Any, ...]], bool]] = {
    "__lt__": lambda a, b: a < b,
    "__le__": lambda a, b: a <= b,
    "__gt__": lambda a, b: a > b,
    "__ge__": lambda a, b: a >= b,
}


def _values(names: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    """The fields' values as a tuple (as the generated methods compare and hash them)."""
    if len(names) == 1:
        get = attrgetter(names[0])
        return lambda obj: (get(obj),)
    return attrgetter(*names) if names else lambda obj: ()  # type: ignore[return-value]


def _comparison(
    values: Callable[[Any], tuple[Any, ...]],
    test: Callable[[tuple[Any, ...], tuple[Any, ...]], bool],
) -> Callable[[Any, Any], Any]:
    def compare(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return test(values(self), values(other))
        return NotImplemented

    return compare


def _repr(names: list[str]) -> Callable[[Any], str]:
    @reprlib.recursive_repr()
    def __repr__(self: Any) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"{self.__class__.__qualname__}({shown})"

    return __repr__
