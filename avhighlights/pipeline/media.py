"""Decoded access to one probed video (`MediaSource`): audio chunks, frames at times, dense clips.

Frames come from decord when it can open the file, else from the ffmpeg-pipe reader; a decord
failure while decoding switches to ffmpeg for the rest of the session. Frame selection uses each
reader's own frame timestamps, so variable-frame-rate files are sampled at the right times.
Resizing (`size` = (height, width)) is torch bilinear interpolation with antialiasing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import numpy as np

from avhighlights.core.errors import CorruptMediaError
from avhighlights.core.timebase import second_grid
from avhighlights.core.types import AudioChunk, ClipBatch, FrameBatch, VideoInfo
from avhighlights.pipeline import audio as audio_decode
from avhighlights.pipeline.frames import FALLBACK_ORDER, FRAME_READERS, clip_indices, frame_index_at, resize_frames

log = logging.getLogger(__name__)

read_audio = audio_decode.read_audio


def sample_times_1fps(info: VideoInfo, position: float = 0.5) -> np.ndarray:
    """One sampling time per step of `second_grid`: start + position * step length.

    Full steps give t = i + position (mid-second by default); the final partial step
    [floor(d), d) is sampled at the same relative position inside it, so every time is in the video.
    """
    if not 0.0 <= position < 1.0:
        raise ValueError(f"position must be in [0, 1), got {position}")
    grid = second_grid(info.duration_s)
    return grid.start_s + position * (grid.end_s - grid.start_s)  # (T,)


def open_media(info: VideoInfo, frame_reader: str | None = None) -> VideoMedia:
    """A `MediaSource` for `info`; `frame_reader` forces "decord" or "ffmpeg" (default: decord,
    falling back to ffmpeg)."""
    if frame_reader is not None and frame_reader not in FRAME_READERS:
        raise ValueError(f"unknown frame reader {frame_reader!r}; choose from {sorted(FRAME_READERS)}")
    return VideoMedia(info, (frame_reader,) if frame_reader else FALLBACK_ORDER)


class VideoMedia:
    """Implements `pipeline.types.MediaSource`; opens a frame reader lazily on first use."""

    def __init__(self, info: VideoInfo, reader_names: tuple[str, ...] = FALLBACK_ORDER):
        self.info = info
        self._candidates = list(reader_names)
        self._reader = None

    def __enter__(self) -> VideoMedia:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    @property
    def reader_name(self) -> str:
        """Name of the frame reader in use (opens one if needed)."""
        return self._current_reader().name

    def frame_times_s(self) -> np.ndarray:
        """Presentation time of every video frame, seconds from the file start."""
        return self._current_reader().timestamps_s

    def audio_chunks(self, sample_rate: int, chunk_s: float = 60.0) -> Iterator[AudioChunk]:
        return audio_decode.audio_chunks(self.info, sample_rate, chunk_s)

    def frames(self, times_s: np.ndarray, size: tuple[int, int] | None = None,
               batch_size: int = 32) -> Iterator[FrameBatch]:
        """Frames on screen at each time (see `frames.frame_index_at`), `batch_size` at a time."""
        times_s = np.asarray(times_s, dtype=np.float64)
        for lo in range(0, len(times_s), max(1, batch_size)):
            batch_s = times_s[lo:lo + batch_size]
            frames = self._decode(lambda ts, b=batch_s: frame_index_at(ts, b))  # (B, H, W, 3)
            yield FrameBatch(batch_s, resize_frames(frames, size))

    def clips(self, spans_start_s: np.ndarray, spans_end_s: np.ndarray, n_frames: int,
              size: tuple[int, int] | None = None, batch_size: int = 8) -> Iterator[ClipBatch]:
        """Per span, the first `n_frames` native frames starting in [start, end) (see `clip_indices`)."""
        starts, ends = np.asarray(spans_start_s, np.float64), np.asarray(spans_end_s, np.float64)
        if starts.shape != ends.shape or n_frames < 1:
            raise ValueError("spans_start_s and spans_end_s must match and n_frames must be >= 1")
        for lo in range(0, len(starts), max(1, batch_size)):
            s, e = starts[lo:lo + batch_size], ends[lo:lo + batch_size]
            flat = self._decode(lambda ts, s=s, e=e: _span_indices(ts, s, e, n_frames))  # (B*n, H, W, 3)
            flat = resize_frames(flat, size)
            yield ClipBatch(s, e, flat.reshape(len(s), n_frames, *flat.shape[1:]))

    def _decode(self, indices_for: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """Frames for the indices that `indices_for(timestamps_s)` picks; retries with the next
        reader when the current one fails to decode."""
        while True:
            reader = self._current_reader()
            try:
                return reader.read(indices_for(reader.timestamps_s))
            except CorruptMediaError as exc:
                if not self._drop_reader(exc):
                    raise

    def _current_reader(self):
        while self._reader is None:
            name = self._candidates[0]
            try:
                self._reader = FRAME_READERS[name](self.info)
            except CorruptMediaError as exc:
                if not self._drop_reader(exc):
                    raise
        return self._reader

    def _drop_reader(self, exc: CorruptMediaError) -> bool:
        """Move on to the next candidate reader; False when there is none left."""
        failed = self._candidates.pop(0)
        self.close()
        if not self._candidates:
            return False
        log.warning("%s reader failed (%s); falling back to %s", failed, exc.reason, self._candidates[0])
        return True


def _span_indices(timestamps_s: np.ndarray, starts_s: np.ndarray, ends_s: np.ndarray, n_frames: int) -> np.ndarray:
    """(B * n_frames,) frame indices, span after span."""
    return np.concatenate([clip_indices(timestamps_s, a, b, n_frames) for a, b in zip(starts_s, ends_s, strict=True)])
