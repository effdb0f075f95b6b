"""A small name -> class registry shared by extractors, scorers and methods (timm style), whose names can be
declared with the module they live in and imported on first use (entry-point style)."""

from __future__ import annotations

import dataclasses
import importlib
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from avhighlights.core.errors import ConfigError, RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps a name to a class; `kind` names what is registered in error messages.

    A name is either registered (its module ran `@REGISTRY.register(name)` on the class) or only declared
    (`declare(name, "package.module:ClassName")`, entry-point style): a declared name is listed by `names()` and
    found by `in` without importing anything, and `get(name)` imports its module on first use, whose decorator
    then registers it. `load_all()` imports every declared module, for whoever needs every class.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, type[T]] = {}
        self._declared: dict[str, str] = {}  # name -> "module:attribute"

    def declare(self, name: str, target: str) -> None:
        """Declare that `name` is registered by the class `target` ("package.module:ClassName") on import."""
        module, sep, attribute = target.partition(":")
        if not (sep and module and attribute):
            raise RegistryError(f"{self.kind} {name!r}: declaration {target!r} is not 'package.module:ClassName'")
        if self._declared.get(name, target) != target:
            raise RegistryError(f"{self.kind} {name!r} is declared twice: as {self._declared[name]} and as {target}")
        if name in self._entries and _target_of(self._entries[name]) != target:
            raise RegistryError(f"{self.kind} {name!r} is registered by {_target_of(self._entries[name])}, "
                                f"not by {target} as declared")
        self._declared[name] = target

    def declare_all(self, targets: Mapping[str, str]) -> None:
        """`declare` every name -> "package.module:ClassName" of `targets` (a package's DECLARED table)."""
        for name, target in targets.items():
            self.declare(name, target)

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def decorator(cls: type[T]) -> type[T]:
            if name in self._entries and self._entries[name] is not cls:
                raise RegistryError(f"{self.kind} {name!r} is registered twice")
            declared = self._declared.get(name)
            if declared is not None and declared != _target_of(cls):
                raise RegistryError(f"{self.kind} {name!r} is declared as {declared}, but {_target_of(cls)} "
                                    f"registers it")
            cls.name = name  # type: ignore[attr-defined]
            self._entries[name] = cls
            return cls

        return decorator

    def get(self, name: str) -> type[T]:
        """The class of `name`, importing its declared module on first use."""
        if name not in self._entries and name in self._declared:
            self._import(name)
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise RegistryError(f"unknown {self.kind} {name!r}; registered: {known}") from None

    def load_all(self) -> dict[str, type[T]]:
        """Every class (declared modules imported now), by name, sorted."""
        return {name: self.get(name) for name in self.names()}

    def names(self) -> list[str]:
        """Registered and declared names, sorted (nothing is imported)."""
        return sorted(self._entries.keys() | self._declared.keys())

    def is_loaded(self, name: str) -> bool:
        """True when `name`'s class is registered (its module imported)."""
        return name in self._entries

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._declared

    def _import(self, name: str) -> None:
        target = self._declared[name]
        module = target.partition(":")[0]
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - any failure of a declared module becomes a typed error
            raise RegistryError(f"{self.kind} {name!r}: its module {module} (declared as {target}) cannot be "
                                f"imported: {type(exc).__name__}: {exc}") from exc
        if name not in self._entries:
            raise RegistryError(f"{self.kind} {name!r} is declared as {target}, but importing {module} did not "
                                f"register it (no @register({name!r}) there)")


def _target_of(cls: type) -> str:
    """`cls` as a declaration target, "package.module:ClassName"."""
    return f"{cls.__module__}:{cls.__qualname__}"


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
