"""Dataclasses that cost less to build: value types are made at every start-up.

Building a dataclass compiles its ``__init__``, ``__repr__``, ``__eq__`` (and, frozen,
``__hash__``, ``__setattr__``, ``__delattr__``; with ``order`` four comparisons) from
source: ~0.5 ms a class on this project's machines, about a tenth of a copy's start-up
over the ~40 classes a run imports.

- ``quick_dataclass`` (same options as ``dataclass``, but for ``slots``) compiles nothing
  when the class is made: ``__repr__``, ``__eq__``, ``__hash__``, the comparisons and,
  frozen, the guards are shared functions over the fields, with the same results as the
  generated ones; ``__init__`` is compiled at the first instance (dataclass compiles
  a frozen class's methods when it is made: six ``exec`` calls, ~0.1 ms each). A class
  with keyword-only fields, ``InitVar``/``ClassVar`` annotations or a dataclass base
  gets ``__init__`` and the guards from dataclass itself.
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
        want_repr, order = options.get("repr", True), options.get("order", False)
        frozen = bool(options.get("frozen"))
        made = _fields_only(cls, rest, frozen, own)
        if made is None:  # what _fields_only leaves to dataclass itself
            made = dataclasses.dataclass(cls, repr=False, eq=False, **rest)
        _add_methods(made, own, want_repr, order, frozen, explicit_hash)
        return made

    return wrap if cls is None else wrap(cls)


_PLAIN = {"init", "frozen", "match_args"}  # the options _fields_only builds by itself


def _fields_only(cls: type, options: dict[str, Any], frozen: bool, own: set[str]) -> Any:
    """``cls`` made a dataclass without compiling anything now: dataclass records the
    fields; the frozen guards are closures; ``__init__`` is compiled at the first
    instance (a class a run never instantiates never pays for it). None when ``cls``
    needs what only dataclass does: a dataclass base, ``kw_only``, ``InitVar`` or
    ``ClassVar`` fields, options beyond init/frozen/match_args."""
    if set(options) - _PLAIN or options.get("init") is False or not _plain_fields(cls):
        return None
    if any(hasattr(base, "__dataclass_fields__") for base in cls.__mro__[1:]):
        return None
    made: Any = dataclasses.dataclass(
        cls, init=False, repr=False, eq=False, match_args=options.get("match_args", True)
    )
    fields = dataclasses.fields(made)
    if len(fields) != len(made.__dataclass_fields__) or any(f.kw_only for f in fields):
        # dataclass found InitVar, ClassVar or KW_ONLY under another name (an alias):
        # too late to hand the class to dataclass itself (it has read the field() specs)
        raise TypeError(
            f"{cls.__name__}: quick_dataclass needs InitVar, ClassVar and KW_ONLY spelled "
            "by those names (or use dataclass)"
        )
    defaulted = ""
    for f in fields:
        has_default = f.default is not dataclasses.MISSING
        if f.init and not has_default and f.default_factory is dataclasses.MISSING:
            if defaulted:
                raise TypeError(f"non-default argument {f.name!r} follows default argument")
        elif f.init:
            defaulted = f.name
    params = made.__dataclass_params__
    params.init, params.frozen = True, frozen
    if "__init__" not in own:
        made.__init__ = _first_init(made, fields, frozen)
    if frozen:
        for name, guard in _guards(made, frozenset(f.name for f in fields)).items():
            if name in own:
                raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")
            guard.__qualname__ = f"{cls.__qualname__}.{name}"
            setattr(made, name, guard)
    return made


def _plain_fields(cls: type) -> bool:
    """Whether every annotation of ``cls`` is a field of its own (no ``InitVar``,
    ``ClassVar`` or ``KW_ONLY``) and none is keyword-only. Asked before dataclass sees the
    class: it replaces the ``field()`` specifications it reads."""
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        text = annotation if isinstance(annotation, str) else repr(annotation)
        if any(word in text for word in ("InitVar", "ClassVar", "KW_ONLY")):
            return False
        value = cls.__dict__.get(name)
        if isinstance(value, dataclasses.Field) and value.kw_only is True:
            return False
    return True


def _first_init(cls: type, fields: tuple[dataclasses.Field, ...], frozen: bool) -> Any:
    """A stand-in ``__init__`` that compiles the real one, puts it in its place and runs it."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        real = cls.__dict__["__init__"]
        if getattr(real, "__first__", False):
            real = _compile_init(cls, fields, frozen)
            cls.__init__ = real  # type: ignore[misc]
        real(self, *args, **kwargs)

    __init__.__first__ = True  # type: ignore[attr-defined]
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    return __init__


class _Factory:
    """The default of a parameter left to its field's ``default_factory``."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def _compile_init(cls: type, fields: tuple[dataclasses.Field, ...], frozen: bool) -> Any:
    """``__init__`` as dataclass writes it: parameters in field order, defaults and
    factories, fields with ``init=False`` set from their defaults, then ``__post_init__``."""
    names = {f.name for f in fields}
    me = "__dataclass_self__" if "self" in names else "self"  # as dataclass names it
    setter, unset = "__dataclass_setattr__", "__dataclass_factory__"
    env: dict[str, Any] = {setter: object.__setattr__, unset: _FACTORY}
    params, lines = [me], []
    for k, f in enumerate(fields):
        default, factory = f"__dataclass_dflt_{k}__", f"__dataclass_make_{k}__"
        if f.default_factory is not dataclasses.MISSING:
            env[factory] = f.default_factory
            param = f"{f.name}={unset}"
            value = (
                f"{factory}() if {f.name} is {unset} else {f.name}" if f.init else f"{factory}()"
            )
        elif not f.init:
            continue  # its default (if any) is the class attribute, as dataclass leaves it
        elif f.default is not dataclasses.MISSING:
            env[default] = f.default
            param, value = f"{f.name}={default}", f.name
        else:
            param, value = f.name, f.name
        if f.init:
            params.append(param)
        lines.append(
            f"  {setter}({me}, {f.name!r}, {value})" if frozen else f"  {me}.{f.name} = {value}"
        )
    if hasattr(cls, "__post_init__"):
        lines.append(f"  {me}.__post_init__()")
    source = f"def __init__({', '.join(params)}):\n" + ("\n".join(lines) or "  pass") + "\n"
    exec(source, env)  # noqa: S102 - made of the class's own field names
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _guards(cls: Any, names: frozenset[str]) -> dict[str, Any]:
    """A frozen dataclass's ``__setattr__`` and ``__delattr__``: fields, and any attribute
    of the class itself, refused (a subclass that is no dataclass may set its own)."""

    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    return {"__setattr__": __setattr__, "__delattr__": __delattr__}


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
