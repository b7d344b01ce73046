"""Dataclass configs: build them from dicts and CLI strings, turn them back into JSON.

Every study keeps its settings in a dataclass. The CLI hands us `--key value` strings, a resumed
run hands us JSON; both go through `config_from_dict`, which checks each key and converts each
value to the field's annotated type, so a typo fails at once with a message saying what is valid.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from intelligible.core.errors import ConfigError

T = TypeVar("T")

_TRUE = frozenset({"true", "1", "yes", "y", "on"})
_FALSE = frozenset({"false", "0", "no", "n", "off"})
_NONE = frozenset({"none", "null"})


class _Mismatch(Exception):
    """A value does not fit a type; turned into a ConfigError that names the key."""


def config_from_dict(cls: type[T], values: dict[str, Any]) -> T:
    """Build dataclass `cls` from `values`, converting strings to each field's annotated type.

    Dashes in keys count as underscores (`n-tokens` is `n_tokens`). Raises ConfigError for an
    unknown key (listing the valid ones), a value that does not fit its field's type, or a
    missing required field.
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"config_from_dict needs a dataclass type, got {cls!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    # get_type_hints resolves string annotations left by `from __future__ import annotations`.
    hints = get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for raw_key, value in values.items():
        key = str(raw_key).replace("-", "_")
        if key not in fields:
            raise ConfigError(_unknown_key_message(cls, key, list(fields)))
        try:
            kwargs[key] = _convert(value, hints.get(key, Any))
        except _Mismatch:
            raise ConfigError(
                f"{cls.__name__}: '{key}' must be {_type_name(hints.get(key, Any))}, got {shown(value)}"
            ) from None
    missing = [
        name
        for name, f in fields.items()
        if name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{cls.__name__}: missing required key(s): {', '.join(missing)}")
    return cls(**kwargs)


def shown(value: Any, limit: int = 80) -> str:
    """`repr(value)`, cut to `limit` characters, for error messages that quote user input."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 15]}... ({len(text)} chars)"


def config_to_dict(obj: Any) -> dict[str, Any]:
    """Return a dataclass instance (or a dict) as a JSON-safe dict: tuples become lists, Paths strings."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if not isinstance(obj, dict):
        raise TypeError(f"config_to_dict needs a dataclass instance or a dict, got {type(obj).__name__}")
    return to_jsonable(obj)


def to_jsonable(value: Any) -> Any:
    """Recursively convert `value` into types `json.dumps` accepts."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return config_to_dict(value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    # NumPy and torch scalars: keep the number, not its repr.
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def parse_cli_overrides(args: list[str]) -> dict[str, str]:
    """Turn `["--n-tokens", "2048", "--flag", "--layers=1,2"]` into `{"n_tokens": "2048", "flag": "true", "layers": "1,2"}`.

    A `--key` followed by another `--key` (or by nothing) is a flag set to "true". Values stay
    strings; `config_from_dict` converts them. A later repeat of a key wins.
    """
    overrides: dict[str, str] = {}
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("--") or token == "--":
            raise ConfigError(f"expected an option like --key, got {token!r} (in: {' '.join(args)})")
        key, has_equals, value = token[2:].partition("=")
        if not has_equals:
            if i + 1 < len(args) and not args[i + 1].startswith("--"):
                value = args[i + 1]
                i += 1
            else:
                value = "true"
        if not key:
            raise ConfigError(f"option {token!r} has no name")
        overrides[key.replace("-", "_")] = value
        i += 1
    return overrides


def _unknown_key_message(cls: type, key: str, valid: list[str]) -> str:
    message = f"{cls.__name__}: unknown key '{key}'"
    close = difflib.get_close_matches(key, valid, n=1)
    if close:
        message += f" (did you mean '{close[0]}'?)"
    return message + f"; valid keys: {', '.join(valid) or '(none)'}"


def _convert(value: Any, tp: Any) -> Any:
    """Convert `value` to type `tp` or raise _Mismatch."""
    if tp is Any:
        return value
    origin, args = get_origin(tp), get_args(tp)
    if origin is Union or origin is types.UnionType:
        return _convert_union(value, args)
    if origin is Literal:
        for choice in args:
            try:
                if _convert(value, type(choice)) == choice:
                    return choice
            except _Mismatch:
                continue
        raise _Mismatch
    if origin in (list, tuple) or tp in (list, tuple):
        return _convert_sequence(value, origin or tp, args)
    if tp is bool:
        return _convert_bool(value)
    if tp is int:
        return _convert_int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise _Mismatch
        try:
            number = float(value)
        except (ValueError, OverflowError):
            raise _Mismatch from None
        # nan and inf are never a learning rate, a time limit or a fraction; refuse them here once
        if not math.isfinite(number):
            raise _Mismatch
        return number
    if tp is str:
        if isinstance(value, (str, Path)):
            return str(value)
        raise _Mismatch
    if isinstance(tp, type) and issubclass(tp, Path):
        if isinstance(value, (str, Path)):
            return tp(value)
        raise _Mismatch
    if isinstance(tp, type) and dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return config_from_dict(tp, value)
    check = origin or tp
    if isinstance(check, type) and isinstance(value, check):
        return value
    raise _Mismatch


def _convert_union(value: Any, args: tuple[Any, ...]) -> Any:
    if type(None) in args and (value is None or (isinstance(value, str) and value.strip().lower() in _NONE)):
        return None
    for option in args:
        if option is type(None):
            continue
        try:
            return _convert(value, option)
        except _Mismatch:
            continue
    raise _Mismatch


def _convert_sequence(value: Any, kind: type, args: tuple[Any, ...]) -> list[Any] | tuple[Any, ...]:
    if isinstance(value, str):
        text = value.strip()
        # Accept "[1, 2]" and "(1, 2)" as well as "1,2".
        if text[:1] in "[(" and text[-1:] in "])":
            text = text[1:-1]
        items: list[Any] = [part.strip() for part in text.split(",")] if text.strip() else []
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise _Mismatch
    if kind is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        # A fixed-length tuple such as tuple[int, int].
        if len(items) != len(args):
            raise _Mismatch
        return tuple(_convert(item, item_type) for item, item_type in zip(items, args))
    item_type = args[0] if args else Any
    converted = [_convert(item, item_type) for item in items]
    return tuple(converted) if kind is tuple else converted


def _convert_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise _Mismatch


# No count, size or seed the library takes comes near this; a larger value is a typo (or `1e30`).
_MAX_INT = 2**63 - 1


def _convert_int(value: Any) -> int:
    number = _parse_int(value)
    if abs(number) > _MAX_INT:
        raise _Mismatch
    return number


def _parse_int(value: Any) -> int:
    # bool is an int subclass, but `True` for a count is almost certainly a mistake.
    if isinstance(value, bool):
        raise _Mismatch
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
        # Allow "1e6" for a token count; reject "2.5".
        try:
            number = float(value)
        except ValueError:
            raise _Mismatch from None
        if math.isfinite(number) and number.is_integer():
            return int(number)
    raise _Mismatch


_ITEM_NAMES = {int: "int", float: "float", str: "string", bool: "bool", Path: "path"}


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "None"
    if tp is bool:
        return "a bool (true/false/1/0/yes/no)"
    if tp is int:
        return "an int (at most 2**63 - 1)"
    if tp is float:
        return "a finite float"
    if tp is str:
        return "a string"
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(choice) for choice in args)
    if origin is Union or origin is types.UnionType:
        return " or ".join(_type_name(arg) for arg in args)
    if origin in (list, tuple):
        item = _ITEM_NAMES.get(args[0], str(args[0])) if args else "value"
        return f"a comma-separated list of {item}s (e.g. 1,2,3)"
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace(typing.__name__ + ".", "")
