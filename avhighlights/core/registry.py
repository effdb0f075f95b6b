"""A small name -> class registry shared by extractors, scorers and methods (timm style)."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from avhighlights.core.errors import ConfigError, RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps a registered name to a class; `kind` names what is registered in error messages."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, type[T]] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def decorator(cls: type[T]) -> type[T]:
            if name in self._entries and self._entries[name] is not cls:
                raise RegistryError(f"{self.kind} {name!r} is registered twice")
            cls.name = name  # type: ignore[attr-defined]
            self._entries[name] = cls
            return cls

        return decorator

    def get(self, name: str) -> type[T]:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise RegistryError(f"unknown {self.kind} {name!r}; registered: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries


def build_config(config_cls: type, overrides: Mapping[str, Any] | None = None) -> Any:
    """Instantiate a frozen config dataclass from defaults plus `overrides`, rejecting unknown keys."""
    overrides = dict(overrides or {})
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ConfigError(
            f"{config_cls.__qualname__}: unknown option(s) {unknown}; valid: {sorted(fields)}"
        )
    hints = field_type_hints(config_cls)
    for key, value in overrides.items():
        check_option_type(config_cls, key, hints.get(key), value)
        if isinstance(value, list):
            overrides[key] = tuple(value)
    return config_cls(**overrides)


def field_type_hints(config_cls: type) -> dict[str, Any]:
    """The resolved field annotations of `config_cls` ({} where they cannot be resolved)."""
    try:
        return typing.get_type_hints(config_cls)
    except (NameError, TypeError):
        return {}


def accepted_types(hint: Any) -> tuple[type, ...] | None:
    """The Python types a JSON-ish value may have for annotation `hint`; None when not checked."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        parts = [accepted_types(arg) for arg in typing.get_args(hint)]
        return None if any(p is None for p in parts) else tuple(t for p in parts for t in p)
    if hint is type(None):
        return (type(None),)
    if origin in (tuple, list) or hint in (tuple, list):
        return (list, tuple)
    if origin is dict or hint is dict:
        return (Mapping,)
    return {bool: (bool,), int: (int,), float: (int, float), str: (str,)}.get(hint)


def check_option_type(config_cls: type, key: str, hint: Any, value: Any) -> None:
    """ConfigError when `value` cannot be option `key` of type `hint` (bools are not numbers here)."""
    allowed = accepted_types(hint) if hint is not None else None
    if allowed is None:
        return
    is_bool_as_number = isinstance(value, bool) and bool not in allowed
    if isinstance(value, allowed) and not is_bool_as_number:
        return
    example = f" (a JSON list on the command line, e.g. --set {key}='[\"a\",\"b\"]')" if list in allowed else ""
    raise ConfigError(f"{config_cls.__qualname__}: option {key!r} expects {typing_name(hint)}{example}, "
                      f"got {type(value).__name__} {value!r}")


def typing_name(hint: Any) -> str:
    """A readable name of an annotation (`tuple[str, ...]`, `float | None`, `int`)."""
    return hint.__name__ if isinstance(hint, type) and not typing.get_args(hint) else str(hint).replace("typing.", "")


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return dataclasses.asdict(config)
