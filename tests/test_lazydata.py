"""core/lazydata.py: dataclasses built at first use, or with shared methods, behave as
``dataclass`` itself builds them (issue 10: start-up)."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import KW_ONLY as KEYWORDS  # noqa: N811 - an alias, on purpose
from dataclasses import dataclass, field
from typing import Any

import pytest

from imageferry.core.lazydata import lazy_dataclass, quick_dataclass


def test_lazy_dataclass_is_a_dataclass_from_its_first_instance_on():
    """core/lazydata.py: built at the first instance, by whichever thread comes first."""

    @lazy_dataclass(frozen=True)
    class Point:
        x: int
        tags: tuple[str, ...] = ()

        def __post_init__(self) -> None:
            if self.x < 0:
                raise ValueError("negative")

    assert not dataclasses.is_dataclass(Point)  # nothing built at import
    made: list[Point] = []
    threads = [threading.Thread(target=lambda: made.append(Point(1))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert made == [Point(1, ())] * 8 and len({hash(p) for p in made}) == 1
    assert repr(made[0]).endswith(".Point(x=1, tags=())")
    assert [f.name for f in dataclasses.fields(Point)] == ["x", "tags"]
    assert dataclasses.replace(made[0], x=2).x == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        made[0].x = 3  # type: ignore[misc]
    with pytest.raises(ValueError):
        Point(-1)
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]
    match made[0]:
        case Point(x, tags):
            assert (x, tags) == (1, ())


def _pair(**options: Any) -> tuple[type, type]:
    """The same declaration built by ``dataclass`` and by ``quick_dataclass``."""

    def declare() -> type:
        class Item:
            name: str
            size: int = 0
            secret: str = field(default="", repr=False)
            note: str = field(default="", compare=False)
            extra: tuple[int, ...] = field(default=(), hash=False)

        return Item

    return dataclass(**options)(declare()), quick_dataclass(**options)(declare())


VALUES = [("a", 1, "s", "n", (1,)), ("a", 1, "t", "m", (2,)), ("b", 0, "", "", ()), ("a", 2)]


@pytest.mark.parametrize(
    "options", [{}, {"frozen": True}, {"frozen": True, "order": True}, {"repr": False}]
)
def test_quick_dataclass_answers_as_dataclass(options: dict[str, Any]):
    real, quick = _pair(**options)
    for args in VALUES:
        r, q = real(*args), quick(*args)
        assert repr(r).split(".")[-1] == repr(q).split(".")[-1] or not options.get("repr", True)
        for other_args in VALUES:
            r2, q2 = real(*other_args), quick(*other_args)
            assert (r == r2) == (q == q2)
            if options.get("order"):
                assert [r < r2, r <= r2, r > r2, r >= r2] == [q < q2, q <= q2, q > q2, q >= q2]
            if options.get("frozen"):
                assert (hash(r) == hash(r2)) == (hash(q) == hash(q2))
        assert (q == args) is False and q != object()  # another class: never equal
        assert q.__match_args__ == r.__match_args__
        assert [f.name for f in dataclasses.fields(q)] == [f.name for f in dataclasses.fields(r)]
        assert dataclasses.replace(q, size=9).size == 9
    if not options.get("frozen"):
        with pytest.raises(TypeError):
            hash(quick("a"))  # eq without frozen: unhashable, as dataclass makes it
    else:
        item = quick("a")
        for attempt in (
            lambda: setattr(item, "size", 3),
            lambda: setattr(item, "other", 3),  # not a field: refused too
            lambda: delattr(item, "size"),
        ):
            with pytest.raises(dataclasses.FrozenInstanceError):
                attempt()
        assert item.size == 0 and not hasattr(item, "other")


def test_quick_frozen_dataclass_post_init_may_set_fields_as_dataclass_allows():
    @quick_dataclass(frozen=True)
    class Named:
        text: str
        upper: str = field(init=False, default="")

        def __post_init__(self) -> None:
            object.__setattr__(self, "upper", self.text.upper())

    assert Named("ab").upper == "AB" and Named("ab") == Named("ab")
    with pytest.raises(dataclasses.FrozenInstanceError):
        Named("ab").upper = "x"  # type: ignore[misc]


def test_quick_dataclass_keeps_what_the_class_defines_and_guards_recursion():
    @quick_dataclass
    class Own:
        items: list[Any]

        def __repr__(self) -> str:
            return "own"

    @quick_dataclass
    class Box:
        items: list[Any]

    assert repr(Own([])) == "own"
    box = Box([])
    box.items.append(box)
    assert repr(box).endswith("Box(items=[...])")
    with pytest.raises(TypeError):
        quick_dataclass(order=True)(
            type("Bad", (), {"__lt__": lambda s, o: True, "__annotations__": {}})
        )


@pytest.mark.parametrize("make", [dataclass, quick_dataclass], ids=["dataclass", "quick"])
def test_frozen_classes_subclass_and_hash_as_dataclass_makes_them(make):
    @make(frozen=True)
    class Base:
        x: int
        y: int = field(default=0, init=False)

    assert dataclasses.fields(Base)[0].name == "x" and Base.__dataclass_params__.frozen

    @dataclass(frozen=True)
    class Child(Base):
        z: int = 3

    class Plain(Base):
        pass

    assert Child(1).z == 3 and Plain(1).x == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        Base(1).y = 5  # type: ignore[misc]

    @make(frozen=True)
    class OwnEq:
        x: int

        def __eq__(self, other: object) -> bool:
            return isinstance(other, OwnEq) and self.x == other.x

    assert hash(OwnEq(1)) == hash(OwnEq(1))


def test_quick_dataclass_refuses_slots():
    with pytest.raises(TypeError, match="slots"):

        @quick_dataclass(frozen=True, slots=True)
        class Slotted:
            x: int


def test_quick_dataclass_compiles_init_at_the_first_instance_with_dataclass_defaults():
    """Nothing is compiled when the class is made (a class a run never instantiates costs
    no compile); the first instance brings the same ``__init__`` dataclass writes."""

    @quick_dataclass(frozen=True)
    class Job:
        name: str
        tags: list[str] = field(default_factory=list)
        size: int = 0
        seen: tuple[str, ...] = field(default=(), init=False)
        made: list[int] = field(default_factory=lambda: [1], init=False, compare=False)

    first = Job.__init__
    a, b = Job("a"), Job("b", ["x"], size=2)
    assert Job.__init__ is not first  # compiled once, then in place
    assert (a.tags, a.size, a.seen, a.made) == ([], 0, (), [1])
    assert a.tags is not Job("c").tags  # a fresh list per instance, as default_factory
    assert (b.name, b.tags, b.size) == ("b", ["x"], 2)
    with pytest.raises(TypeError):
        Job()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Job("a", seen=("x",))  # type: ignore[call-arg]
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'size'"):
        a.size = 1  # type: ignore[misc]


def test_quick_dataclass_refuses_what_dataclass_refuses_and_passes_on_what_it_cannot_do():
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):

        @quick_dataclass
        class Bad:
            a: int = 0
            b: int  # type: ignore[misc]

    @quick_dataclass(frozen=True)
    class Keyed:  # keyword-only fields and InitVars: dataclass itself builds the class
        a: int
        b: int = field(default=0, kw_only=True)
        scale: dataclasses.InitVar[int] = 1

        def __post_init__(self, scale: int) -> None:
            object.__setattr__(self, "a", self.a * scale)

    assert Keyed(2, b=1, scale=3) == Keyed(6, b=1)
    assert [f.kw_only for f in dataclasses.fields(Keyed)] == [False, True]
    with pytest.raises(TypeError):
        Keyed(1, 2, 3)  # type: ignore[misc]  # b only by keyword


def test_quick_dataclass_names_what_it_cannot_build_and_keeps_dataclass_spellings():
    """An InitVar or KW_ONLY under another name would get a wrong ``__init__``: refused
    when the class is made. A field named ``self``, a ``default_factory`` shown as
    ``<factory>`` and an ``init=False`` default left on the class, as dataclass does."""
    with pytest.raises(TypeError, match="spelled by those names"):

        @quick_dataclass(frozen=True)
        class Aliased:
            a: int
            _: KEYWORDS
            b: int = 0

    @quick_dataclass(frozen=True, match_args=False)
    class Odd:
        self: int
        items: list[int] = field(default_factory=list)
        note: str = field(default="n", init=False)

    odd = Odd(1)
    assert (odd.self, odd.items, odd.note) == (1, [], "n") and "note" not in vars(odd)
    assert "<factory>" in str(__import__("inspect").signature(Odd))
    assert not hasattr(Odd, "__match_args__")
