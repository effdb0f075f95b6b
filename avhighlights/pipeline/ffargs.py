"""Paths as ffmpeg/ffprobe/decord arguments that can never be read as an option or a protocol URL.

ffprobe takes its input as a positional argument, so a file named `-report` or `-version` is
parsed as an option; libavformat reads `name:rest` as protocol `name` (`pipe:`, `concat:`, ...).
An absolute path starts with `/`, which is neither: it is always opened as a plain file.
"""

from __future__ import annotations

import os
from pathlib import Path


def safe_media_arg(path: str | os.PathLike[str]) -> str:
    """`path` made absolute (not resolved: symlinks stay), for every ffmpeg/ffprobe/decord call."""
    return str(Path(path).absolute())
