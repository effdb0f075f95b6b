"""KEY=VALUE command-line items (`--set`, `--bind`), shared by `bench`, `fit`, `score` and `pca`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from avhighlights.core.errors import ConfigError


def parse_pairs(items: Sequence[str], option: str) -> dict[str, str]:
    """['visual=logmel', ...] -> {'visual': 'logmel'}; a malformed item -> ConfigError."""
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"{option} expects KEY=VALUE, got {item!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """--set items; a VALUE is parsed as JSON when it can be (as in `bench`)."""
    overrides: dict[str, Any] = {}
    for key, raw in parse_pairs(items, "--set").items():
        try:
            overrides[key] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key] = raw
    return overrides
