"""Typed errors. Every error that concerns a file names the file and the problem."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class AVHighlightsError(Exception):
    """Base class of every error this package raises on purpose."""

    exit_code = 1


class MediaError(AVHighlightsError):
    """A media file cannot be used; carries the path and a one-line reason."""

    exit_code = 3

    def __init__(self, path: str | Path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class MissingFileError(MediaError):
    """The file does not exist or is not a regular file."""


class NotMediaError(MediaError):
    """The file is not a media container that ffprobe recognises."""


class CorruptMediaError(MediaError):
    """The container is recognised but truncated or undecodable."""


class NoVideoStreamError(MediaError):
    """The file has no video stream (audio-only files land here)."""


class UnknownDurationError(MediaError):
    """The duration is zero, negative or cannot be determined."""


class ConfigError(AVHighlightsError):
    """A configuration value is unknown or out of range."""

    exit_code = 2


class RegistryError(ConfigError):
    """A name is not registered."""


class WeightsNotFoundError(AVHighlightsError):
    """A weights file is not available locally and cannot be downloaded."""

    exit_code = 4

    def __init__(self, message: str, *, parts: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.parts = tuple(parts) or (message,)  # one paragraph per missing file

    @classmethod
    def of_many(cls, errors: Sequence[WeightsNotFoundError]) -> WeightsNotFoundError:
        """One error for several: a count, then one indented paragraph per missing file (nested lists flattened,
        repeats dropped); a single file keeps its own message."""
        parts = list(dict.fromkeys(part for error in errors for part in error.parts))
        if len(parts) == 1:
            return cls(parts[0])
        listing = "\n".join(f"  - {part}" for part in parts)
        return cls(f"{len(parts)} weights files are missing:\n{listing}", parts=parts)


class WeightsHashError(AVHighlightsError):
    """A weights file does not have the expected sha256."""

    exit_code = 4


class CheckpointError(AVHighlightsError):
    """A checkpoint is unreadable or does not fit the current installation."""

    exit_code = 5


class CheckpointMismatchError(CheckpointError):
    """A checkpoint was trained on features from other extractors or versions."""


class FeatureStoreError(AVHighlightsError):
    """A feature-store entry is missing, corrupt or inconsistent with its manifest."""

    exit_code = 6


class DatasetError(AVHighlightsError):
    """A dataset root, a dataset file or a bench result file is missing or malformed."""

    exit_code = 7


class OutputError(AVHighlightsError):
    """The output location cannot be written: not a folder, not writable, no space left, or locked by another run."""

    exit_code = 8


EXIT_PARTIAL_FAILURE = 9  # a batch where some videos failed and the others were written


def batch_exit_code(n_videos: int, failed_codes: list[int]) -> int:
    """A batch's exit code: 0 when nothing failed; EXIT_PARTIAL_FAILURE when some videos failed and the
    others were written; when every video failed, the code their errors share (3 = all bad media), else 1."""
    if not failed_codes:
        return 0
    if len(failed_codes) < n_videos:
        return EXIT_PARTIAL_FAILURE
    codes = set(failed_codes)
    return codes.pop() if len(codes) == 1 else 1
