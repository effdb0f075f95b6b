"""Torch device names checked without importing torch, so a typo in `--device` fails at once (exit 2), even on
paths that never load a network."""

from __future__ import annotations

import re

from avhighlights.core.errors import ConfigError

# torch's device types (c10/core/DeviceType.h), the ones a user can name; an index is allowed after a colon.
DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu", "hip", "xla", "hpu", "mtia", "ipu", "meta", "privateuseone")
_DEVICE_RE = re.compile(rf"^(?:{'|'.join(DEVICE_TYPES)})(?::\d+)?$")


def check_device_name(name: str) -> str:
    """`name` when torch would accept it as a device ('cpu', 'cuda', 'cuda:1', 'mps', ...); ConfigError otherwise."""
    if not _DEVICE_RE.match(name):
        raise ConfigError(f"unknown device {name!r}: expected cpu, cuda, cuda:N, mps or another torch device type "
                          f"({', '.join(DEVICE_TYPES)}), optionally with :N")
    return name
