"""Which files count as videos, and the one recursive folder scan (fit, score, pca, reprocess, folder datasets)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from avhighlights.core.errors import ConfigError

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v")


def is_video_file(path: Path) -> bool:
    """A regular file whose suffix (any case) is one of `VIDEO_SUFFIXES`."""
    return path.suffix.lower() in VIDEO_SUFFIXES and path.is_file()


def videos_under(folder: Path) -> list[Path]:
    """Video files anywhere under `folder`, sorted by path."""
    return sorted(p for p in Path(folder).rglob("*") if is_video_file(p))


def find_videos(paths: Sequence[str | Path]) -> list[Path]:
    """Files as given; folders scanned recursively for video suffixes. Order kept, duplicates dropped."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += videos_under(path)
        else:
            found.append(path)  # probe() names a missing or bad file
    if not found:
        raise ConfigError(f"no videos found in {', '.join(map(str, paths)) or '(nothing given)'} "
                          f"(looked for {', '.join(VIDEO_SUFFIXES)})")
    return list(dict.fromkeys(found))
