"""The zoo index: `index.json` next to the trained checkpoints it lists.

    {"format": "avhighlights-zoo/1",
     "models": [{"name": "davihd-youtube", "method": "davihd", "file": "davihd-youtube.safetensors",
                 "sha256": "...", "default": true, "summary": "one line",
                 "numbers": {"youtube_lodo_mean": 70.1}}]}

`file` is relative to the zoo folder: the package's own `avhighlights/zoo/`, or `$AVH_ZOO_DIR` when set.
At most one entry per method is its `default`; `avhighlights score --method M` without `--checkpoint`
scores with it (see pipeline/scorer.py), and `--checkpoint zoo:NAME` picks any entry.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avhighlights.core.errors import CheckpointError

ZOO_DIR_ENV = "AVH_ZOO_DIR"
ZOO_FORMAT = "avhighlights-zoo/1"
ZOO_PREFIX = "zoo:"
INDEX_NAME = "index.json"
HASH_BLOCK_BYTES = 1 << 20


@dataclass(frozen=True)
class ZooEntry:
    """One trained model of the zoo."""

    name: str
    method: str
    file: str  # relative to the zoo folder
    sha256: str
    default: bool = False
    summary: str = ""
    numbers: Mapping[str, float] = field(default_factory=dict)  # card numbers, e.g. {"tvsum_top5": 62.0}

    @property
    def label(self) -> str:
        """How results name the checkpoint: `zoo:NAME`."""
        return f"{ZOO_PREFIX}{self.name}"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ZooEntry:
        return cls(name=str(data["name"]), method=str(data["method"]), file=str(data["file"]),
                   sha256=str(data["sha256"]).lower(), default=bool(data.get("default", False)),
                   summary=str(data.get("summary", "")),
                   numbers={str(k): float(v) for k, v in dict(data.get("numbers") or {}).items()
                            if v is not None})  # null: not measured


def zoo_dir() -> Path:
    """$AVH_ZOO_DIR when set, else the package's zoo folder."""
    return Path(os.environ.get(ZOO_DIR_ENV) or Path(__file__).parent)


def zoo_entries() -> list[ZooEntry]:
    """Every entry of the index (a missing index is an empty zoo; a malformed one is a CheckpointError)."""
    index = zoo_dir() / INDEX_NAME
    if not index.is_file():
        return []
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
        if data.get("format") != ZOO_FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {ZOO_FORMAT!r}")
        entries = [ZooEntry.from_json(model) for model in data["models"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{index}: not a readable zoo index ({exc})") from None
    _refuse_two_defaults(index, entries)
    return entries


def _refuse_two_defaults(index: Path, entries: list[ZooEntry]) -> None:
    defaults = [e.method for e in entries if e.default]
    doubled = sorted({m for m in defaults if defaults.count(m) > 1})
    if doubled:
        raise CheckpointError(f"{index}: more than one default model for {', '.join(doubled)}")


def zoo_entry(name: str) -> ZooEntry:
    """The entry called `name` (a `zoo:` prefix is accepted); an unknown name is a CheckpointError listing them."""
    name = name.removeprefix(ZOO_PREFIX)
    entries = zoo_entries()
    for entry in entries:
        if entry.name == name:
            return entry
    known = ", ".join(e.name for e in entries) or "none: the zoo is empty"
    raise CheckpointError(f"zoo:{name}: no such zoo model (known: {known})")


def default_entry(method: str) -> ZooEntry | None:
    """The default zoo model of `method`, None when it has none."""
    return next((e for e in zoo_entries() if e.method == method and e.default), None)


def zoo_path(entry: ZooEntry) -> Path:
    """The entry's checkpoint file, after checking its sha256 (missing file or mismatch: CheckpointError)."""
    path = zoo_dir() / entry.file
    if not path.is_file():
        raise CheckpointError(f"{entry.label}: checkpoint file {path} is missing")
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    if digest != entry.sha256:
        raise CheckpointError(f"{entry.label}: {path} has sha256 {digest}, the zoo index says {entry.sha256}")
    return path
