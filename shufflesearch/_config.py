"""Typed config dataclasses from YAML mappings: type checks from the annotations, one-line errors.

Config dataclasses call `check_types(self, section)` in `__post_init__` and raise their own range
errors as `ShuffleSearchError("<section>.<field> = <value>: <why>")`; `from_mapping` adds the source
file in front. Written by hand because the project keeps no schema library for a dozen flat fields.
"""

from __future__ import annotations

import dataclasses
import types
import typing
import warnings
from typing import Any, Literal, Mapping, TypeVar, Union

from shufflesearch.errors import ShuffleSearchError, errors_from, reject_unknown_keys

T = TypeVar("T")


def fail(section: str, name: str, value: Any, why: str) -> typing.NoReturn:
    raise ShuffleSearchError(f"{section}.{name} = {value!r}: {why}")


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if origin is Literal:
        return value in typing.get_args(hint)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    return {type(None): "null", bool: "true or false", int: "an integer", float: "a number",
            str: "a string"}.get(hint, getattr(hint, "__name__", str(hint)))


def check_types(obj: Any, section: str) -> None:
    """Raise for the first field of dataclass `obj` whose value does not match its annotation."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if not _matches(value, hints[f.name]):
            fail(section, f.name, value, f"must be {_describe(hints[f.name])}")


def _coerce(value: Any, hint: Any) -> Any:
    """YAML 1.1 reads `1e-3` (no dot) as a string; accept it where a number is expected."""
    wants_float = hint is float or float in typing.get_args(hint)
    if wants_float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def from_mapping(cls: type[T], data: Any, source: str, section: str) -> T:
    """`cls(**data)` with unknown keys, wrong types and bad values reported as one line naming `source`."""
    with errors_from(source):
        if not isinstance(data, Mapping):
            raise ShuffleSearchError(f"{section} = {data!r}: must be a mapping")
        reject_unknown_keys(data, field_names(cls), section)
        hints = typing.get_type_hints(cls)
        return cls(**{k: _coerce(v, hints[k]) for k, v in data.items()})


def renamed(new_name: str, new: Any, old_name: str, old: Any) -> Any:
    """The value of keyword `new_name` of a public function, which was `old_name` before 0.2: `old`, if
    given, is taken for one more release with a DeprecationWarning (both given: an error)."""
    if old is None:
        return new
    if new is not None:
        raise ShuffleSearchError(f"{old_name}={old!r} and {new_name}={new!r}: {old_name} is the old name of "
                                 f"{new_name}; give {new_name} alone")
    warnings.warn(f"{old_name} is deprecated, use {new_name} (the old name goes in the next release)",
                  DeprecationWarning, stacklevel=3)
    return old
