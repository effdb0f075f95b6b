"""Which files count as videos, and the one recursive folder scan (fit, pca, reprocess, folder datasets)."""

from __future__ import annotations

from pathlib import Path

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v")


def is_video_file(path: Path) -> bool:
    """A regular file whose suffix (any case) is one of `VIDEO_SUFFIXES`."""
    return path.suffix.lower() in VIDEO_SUFFIXES and path.is_file()


def videos_under(folder: Path) -> list[Path]:
    """Video files anywhere under `folder`, sorted by path."""
    return sorted(p for p in Path(folder).rglob("*") if is_video_file(p))
