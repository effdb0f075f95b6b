"""Which extractor feeds each role of a method: the binding (role -> extractor name), checked and built."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from avhighlights.core.errors import ConfigError
from avhighlights.core.sample import FeatureSource
from avhighlights.extractors.base import EXTRACTORS, Extractor, create_extractor


def extractor_sources(extractors: Mapping[str, Extractor]) -> dict[str, FeatureSource]:
    """The binding a set of role -> extractor objects provides (name, version, dim and full identity)."""
    return {role: ex.feature_source() for role, ex in extractors.items()}


def build_extractors(binding: Mapping[str, str], extractor_overrides: Mapping[str, Mapping[str, Any]] | None = None,
                     device: str | None = None) -> dict[str, Extractor]:
    """role -> extractor; `extractor_overrides` maps an extractor name to config overrides."""
    overrides = extractor_overrides or {}
    return {role: create_extractor(name, overrides.get(name), device) for role, name in binding.items()}


def resolve_binding(base: Mapping[str, str], overrides: Mapping[str, str] | None) -> dict[str, str]:
    """`base` (role -> extractor) with `overrides` applied; unknown roles or extractors -> ConfigError."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(base))
    if unknown:
        raise ConfigError(f"--bind: unknown role(s) {unknown}; this method reads {sorted(base)}")
    binding = {**base, **overrides}
    for role, name in binding.items():
        if name not in EXTRACTORS:
            raise ConfigError(f"role {role!r} is bound to extractor {name!r}, which is not installed; bind another "
                              f"with --bind {role}=EXTRACTOR (installed: {', '.join(EXTRACTORS.names())})")
    return binding
