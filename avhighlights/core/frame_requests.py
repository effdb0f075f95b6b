"""What a frame extractor asks the decoder for, declared before any decoding: frames at times, or dense clips on
spans, each at one size. `pipeline.media` serves a list of requests from one sequential decode of the video
(the shared pass) or one request at a time (the pull path, `MediaSource.frames` / `clips`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Size = tuple[int, int] | None  # (height, width) the decoder scales to; None = native displayed size


@dataclass(frozen=True, eq=False)
class FrameRequest:
    """The frame on screen at each of `times_s`, `batch_size` frames per batch."""

    times_s: np.ndarray  # (T,) seconds, ascending
    size: Size
    batch_size: int = 32

    @property
    def n_items(self) -> int:
        return len(self.times_s)


@dataclass(frozen=True, eq=False)
class ClipRequest:
    """For each span [start, end), its first `n_frames` frames (see `pipeline.frames.clip_indices`), `batch_size`
    clips per batch."""

    start_s: np.ndarray  # (T,)
    end_s: np.ndarray  # (T,)
    n_frames: int
    size: Size
    batch_size: int = 8

    def __post_init__(self) -> None:
        if np.shape(self.start_s) != np.shape(self.end_s) or self.n_frames < 1:
            raise ValueError("start_s and end_s must match and n_frames must be >= 1")

    @property
    def n_items(self) -> int:
        return len(self.start_s)


MediaRequest = FrameRequest | ClipRequest
