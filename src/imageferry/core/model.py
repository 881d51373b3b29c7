"""Validated settings records, declared like pydantic models, without pydantic's start-up cost.

cfg.yaml's schema needs a small part of pydantic: typed fields with defaults and bounds,
unknown keys refused, field validators, secrets kept out of ``repr``, every problem reported
with its location. Importing pydantic and building the models took ~0.14 s of every run (more
than all the requests of a copy with nothing to do), so this module does that part: the same
declarations (``Field(5, ge=1)``, ``@field_validator``, ``PrivateAttr``, ``SecretStr``), the
same ``model_validate``/``model_fields``, and pydantic's wording in :class:`ValidationError`.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal, Union, get_args, get_origin
from typing import get_type_hints as _hints

_MISSING: Any = object()
ErrorDict = dict[str, Any]  # {"loc": (...), "msg": str, "type": str}: pydantic's shape


class SecretStr:
    """A string that shows as ``**********`` in ``repr``/``str``: passwords, tokens."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretStr('**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretStr) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __len__(self) -> int:
        return len(self._value)


class ValidationError(ValueError):
    """Every problem of one validation, each ``{"loc", "msg", "type"}`` as pydantic gives them."""

    def __init__(self, title: str, errors: list[ErrorDict]) -> None:
        self._errors = errors
        lines = [f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in errors]
        super().__init__(f"{len(errors)} validation error(s) for {title}\n" + "\n".join(lines))

    def errors(self) -> list[ErrorDict]:
        return list(self._errors)


class FieldInfo:
    def __init__(
        self,
        default: Any,
        factory: Callable[[], Any] | None,
        *,
        alias: str | None = None,
        exclude: bool = False,
        **bounds: Any,
    ) -> None:
        self.default, self.default_factory = default, factory
        self.alias, self.exclude = alias, exclude
        self.bounds = {k: v for k, v in bounds.items() if v is not None}
        self.annotation: Any = None

    @property
    def required(self) -> bool:
        return self.default is _MISSING and self.default_factory is None

    def make_default(self) -> Any:
        return self.default_factory() if self.default_factory else self.default


def Field(  # noqa: N802 - pydantic's spelling, so declarations read the same
    default: Any = _MISSING,
    *,
    default_factory: Callable[[], Any] | None = None,
    alias: str | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    description: str | None = None,
    exclude: bool = False,
) -> Any:
    return FieldInfo(
        default, default_factory, alias=alias, exclude=exclude, ge=ge, gt=gt, le=le, lt=lt
    )


class _Private:
    def __init__(self, default: Any, factory: Callable[[], Any] | None) -> None:
        self.default, self.factory = default, factory


def PrivateAttr(  # noqa: N802
    default: Any = None, *, default_factory: Callable[[], Any] | None = None
) -> Any:
    return _Private(default, default_factory)


class _Validator:
    def __init__(self, fields: tuple[str, ...], mode: str, method: Any) -> None:
        self.fields, self.mode, self.method = fields, mode, method


def field_validator(*fields: str, mode: Literal["before", "after"] = "after") -> Any:
    """``@field_validator("a", "b", mode=...)`` over a ``@classmethod(cls, value)``."""
    return lambda method: _Validator(fields, mode, method)


class Model:
    """A record whose fields are checked on creation; unknown keys are refused.

    Frozen unless a subclass sets ``model_frozen = False``.
    """

    model_fields: ClassVar[dict[str, FieldInfo]] = {}
    model_frozen: ClassVar[bool] = True  # False: fields may be assigned (unchecked, as pydantic)
    _privates: ClassVar[dict[str, _Private]] = {}
    _validators: ClassVar[list[_Validator]] = []
    _resolved: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields, privates = dict(cls.model_fields), dict(cls._privates)
        validators = list(cls._validators)
        for name, value in list(vars(cls).items()):
            if isinstance(value, _Private):
                privates[name] = value
                delattr(cls, name)
            elif isinstance(value, _Validator):
                validators.append(value)
                setattr(cls, name, value.method)
        for name in cls.__dict__.get("__annotations__", {}):
            if name.startswith(("_", "model_")) or name in privates:
                continue
            value = cls.__dict__.get(name, _MISSING)
            fields[name] = value if isinstance(value, FieldInfo) else FieldInfo(value, None)
            if isinstance(value, FieldInfo):
                delattr(cls, name)
        cls.model_fields, cls._privates, cls._validators = fields, privates, validators
        cls._resolved = False

    def __init__(self, **data: Any) -> None:
        values, errors = type(self)._check(data, ())
        if errors:
            raise ValidationError(type(self).__name__, errors)
        self._fill(values)

    def _fill(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)
        for name, private in self._privates.items():
            default = private.factory() if private.factory else private.default
            object.__setattr__(self, name, default)

    @classmethod
    def model_validate(cls, data: Any) -> Any:
        if isinstance(data, cls):
            return data
        if not isinstance(data, dict):
            raise ValidationError(cls.__name__, [_error((), "model_type", cls._dict_wanted())])
        return cls(**data)

    @classmethod
    def _dict_wanted(cls) -> str:
        return f"Input should be a valid dictionary or instance of {cls.__name__}"

    @classmethod
    def _check(cls, data: dict[str, Any], loc: tuple) -> tuple[dict[str, Any], list[ErrorDict]]:
        """Each field by its name or its alias (pydantic's ``populate_by_name``)."""
        cls._resolve()
        values: dict[str, Any] = {}
        known = {k for name, info in cls.model_fields.items() for k in (name, info.alias) if k}
        errors = [
            _error((*loc, key), "extra_forbidden", "Extra inputs are not permitted")
            for key in data
            if key not in known
        ]
        for name, info in cls.model_fields.items():
            key = info.alias if info.alias in data else name
            if key not in data:
                if info.required:
                    errors.append(_error((*loc, info.alias or name), "missing", "Field required"))
                else:
                    values[name] = info.make_default()
                continue
            try:
                values[name] = cls._field(name, info, data[key], (*loc, key))
            except ValidationError as exc:
                errors.extend(exc.errors())
        return values, errors

    def model_dump(self, *, by_alias: bool = False, exclude_none: bool = False) -> dict[str, Any]:
        """The fields as plain data (records inside become dicts), as pydantic's does."""
        out: dict[str, Any] = {}
        for name, info in self.model_fields.items():
            value = _dumped(getattr(self, name), by_alias, exclude_none)
            if info.exclude or (exclude_none and value is None):
                continue
            out[(info.alias or name) if by_alias else name] = value
        return out

    @classmethod
    def _field(cls, name: str, info: FieldInfo, value: Any, loc: tuple) -> Any:
        chosen = [v for v in cls._validators if name in v.fields]
        try:
            for v in chosen:
                if v.mode == "before":
                    value = v.method.__get__(None, cls)(value)
            value = _convert(info.annotation, value, loc)
            _check_bounds(info.bounds, value, loc)
            for v in chosen:
                if v.mode == "after":
                    value = v.method.__get__(None, cls)(value)
        except ValueError as exc:
            if isinstance(exc, ValidationError):
                raise
            error = _error(loc, "value_error", f"Value error, {exc}")
            raise ValidationError(cls.__name__, [error]) from None
        return value

    @classmethod
    def _resolve(cls) -> None:
        if not cls._resolved:
            hints = _hints(cls)
            for name, info in cls.model_fields.items():
                info.annotation = hints[name]
            cls._resolved = True

    def __setattr__(self, name: str, value: Any) -> None:
        if self.model_frozen and name in self.model_fields:
            raise AttributeError(f"{type(self).__name__} is frozen: cannot set {name}")
        object.__setattr__(self, name, value)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.model_fields)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.model_fields)
        return f"{type(self).__name__}({shown})"


def _dumped(value: Any, by_alias: bool, exclude_none: bool) -> Any:
    if isinstance(value, Model):
        return value.model_dump(by_alias=by_alias, exclude_none=exclude_none)
    if isinstance(value, list | tuple):
        return [_dumped(v, by_alias, exclude_none) for v in value]
    return value


def _error(loc: tuple, kind: str, msg: str) -> ErrorDict:
    return {"loc": loc, "msg": msg, "type": kind}


def _fail(loc: tuple, kind: str, msg: str) -> ValidationError:
    return ValidationError("value", [_error(loc, kind, msg)])


_TRUE = {"1", "on", "t", "true", "y", "yes"}
_FALSE = {"0", "off", "f", "false", "n", "no"}


def _convert(kind: Any, value: Any, loc: tuple) -> Any:  # noqa: C901 - one branch a type
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        options = get_args(kind)
        if value is None and type(None) in options:
            return None
        real = [k for k in options if k is not type(None)]
        for option in real[:-1]:  # the first type that takes the value
            try:
                return _convert(option, value, loc)
            except ValidationError:
                continue
        return _convert(real[-1], value, loc)
    if origin is Literal:
        if value in get_args(kind):
            return value
        allowed = [repr(a) for a in get_args(kind)]
        text = " or ".join([", ".join(allowed[:-1]), allowed[-1]] if len(allowed) > 1 else allowed)
        raise _fail(loc, "literal_error", f"Input should be {text}")
    if kind is Any:
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise _fail(loc, "list_type", "Input should be a valid list")
        return _items(get_args(kind)[0], value, loc)
    if origin is dict:
        if not isinstance(value, dict):
            raise _fail(loc, "dict_type", "Input should be a valid dictionary")
        return _mapping(get_args(kind), value, loc)
    if isinstance(kind, type) and issubclass(kind, Model):
        if isinstance(value, kind):
            return value
        if not isinstance(value, dict):
            raise _fail(loc, "model_type", kind._dict_wanted())
        values, errors = kind._check(value, loc)
        if errors:
            raise ValidationError(kind.__name__, errors)
        record = kind.__new__(kind)
        record._fill(values)
        return record
    return _scalar(kind, value, loc)


def _items(kind: Any, value: list | tuple, loc: tuple) -> list:
    out, errors = [], []
    for i, item in enumerate(value):
        try:
            out.append(_convert(kind, item, (*loc, i)))
        except ValidationError as exc:
            errors.extend(exc.errors())
    if errors:
        raise ValidationError("list", errors)
    return out


def _mapping(kinds: tuple[Any, Any], value: dict, loc: tuple) -> dict:
    out, errors = {}, []
    for key, item in value.items():
        try:
            out[_convert(kinds[0], key, (*loc, key))] = _convert(kinds[1], item, (*loc, key))
        except ValidationError as exc:
            errors.extend(exc.errors())
    if errors:
        raise ValidationError("dict", errors)
    return out


def _scalar(kind: Any, value: Any, loc: tuple) -> Any:
    """pydantic's lax mode for the scalar types cfg.yaml uses."""
    if kind is str or kind is SecretStr:
        if not isinstance(value, str | SecretStr):
            raise _fail(loc, "string_type", "Input should be a valid string")
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        return SecretStr(text) if kind is SecretStr else text
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise _fail(
            loc, "bool_parsing", "Input should be a valid boolean, unable to interpret input"
        )
    if kind is int:
        return _number(value, loc, whole=True)
    if kind is float:
        return _number(value, loc, whole=False)
    if kind is Path:
        if isinstance(value, Path | str):
            return Path(value)
        raise _fail(loc, "path_type", "Input is not a valid path")
    raise TypeError(f"no validation for {kind!r}")  # a schema error: a bug, not bad input


def _number(value: Any, loc: tuple, *, whole: bool) -> int | float:
    name, article = ("integer", "an") if whole else ("number", "a")
    number: int | float
    if isinstance(value, bool | int | float):
        number = int(value) if isinstance(value, bool) else value
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            msg = f"Input should be a valid {name}, unable to parse string as {article} {name}"
            raise _fail(loc, f"{name[:3]}_parsing", msg) from None
    else:
        raise _fail(loc, f"{name[:3]}_type", f"Input should be a valid {name}")
    if not math.isfinite(number):
        raise _fail(loc, "finite_number", "Input should be a finite number")
    if not whole:
        return float(number)
    if number != int(number):
        msg = "Input should be a valid integer, got a number with a fractional part"
        raise _fail(loc, "int_from_float", msg)
    return int(number)


_BOUNDS = {
    "ge": (float.__ge__, "greater_than_equal", "greater than or equal to"),
    "gt": (float.__gt__, "greater_than", "greater than"),
    "le": (float.__le__, "less_than_equal", "less than or equal to"),
    "lt": (float.__lt__, "less_than", "less than"),
}


def _check_bounds(bounds: dict[str, float], value: Any, loc: tuple) -> None:
    for key, bound in bounds.items():
        ok, kind, words = _BOUNDS[key]
        if value is not None and not ok(float(value), float(bound)):
            raise _fail(loc, kind, f"Input should be {words} {bound:g}")
