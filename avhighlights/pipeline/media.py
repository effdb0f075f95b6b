"""Decoded access to one probed video (`MediaSource`): audio chunks, frames at times, dense clips.

Frames come from PyAV when it can open the file (scaled in the decoder, see `pyav_reader`), else from decord,
else from the ffmpeg-pipe reader; a reader failure while decoding switches to the next one for the rest of the
session. Those two decode native frames and resize them with torch (bilinear with antialiasing). Frame selection
uses each reader's own frame timestamps, so variable-frame-rate files are sampled at the right times.
`serve(requests)` answers several extractors' requests from one forward decode (see `frame_plan`); `frames` and
`clips` are the same machinery for one request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence

import numpy as np

from avhighlights.core.errors import CorruptMediaError
from avhighlights.core.frame_requests import ClipRequest, FrameRequest, MediaRequest, Size
from avhighlights.core.timebase import second_grid
from avhighlights.core.types import AudioChunk, ClipBatch, FrameBatch, VideoInfo
from avhighlights.pipeline import audio as audio_decode
from avhighlights.pipeline.frame_plan import CHUNK_FRAMES, PassStats, serve_requests
from avhighlights.pipeline.frames import DecordReader, FfmpegReader, resize_frames

log = logging.getLogger(__name__)

read_audio = audio_decode.read_audio


def _pyav_reader() -> type:
    """PyAV is imported on the first frame request, so audio-only runs never load it."""
    from avhighlights.pipeline.pyav_reader import PyavReader

    return PyavReader


FRAME_READERS: dict[str, Callable[[], type]] = {  # reader name -> its class, imported when first opened
    "pyav": _pyav_reader, DecordReader.name: lambda: DecordReader, FfmpegReader.name: lambda: FfmpegReader}
FALLBACK_ORDER = ("pyav", DecordReader.name, FfmpegReader.name)


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
    """A `MediaSource` for `info`; `frame_reader` forces "pyav", "decord" or "ffmpeg" (default: pyav, falling
    back to decord, then ffmpeg)."""
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
        request = FrameRequest(np.asarray(times_s, dtype=np.float64), size, batch_size)
        yield from (batch for _, batch in self.serve([request]))

    def clips(self, spans_start_s: np.ndarray, spans_end_s: np.ndarray, n_frames: int,
              size: tuple[int, int] | None = None, batch_size: int = 8) -> Iterator[ClipBatch]:
        """Per span, the first `n_frames` native frames starting in [start, end) (see `clip_indices`)."""
        request = ClipRequest(np.asarray(spans_start_s, np.float64), np.asarray(spans_end_s, np.float64), n_frames,
                              size, batch_size)
        yield from (batch for _, batch in self.serve([request]))

    def serve(self, requests: Sequence[MediaRequest], chunk_frames: int = CHUNK_FRAMES
              ) -> Iterator[tuple[int, FrameBatch | ClipBatch]]:
        """(request number, batch) for every request from one forward decode; see `frame_plan.serve_requests`.
        `self.last_pass` holds the pass's counts."""
        self.last_pass = PassStats()
        timestamps_s = self.frame_times_s() if any(r.n_items for r in requests) else np.zeros(0)
        yield from serve_requests(self._read_sized, timestamps_s, requests, chunk_frames, self.last_pass)

    def _read_sized(self, wanted: Mapping[int, Collection[Size]]) -> dict[tuple[int, Size], np.ndarray]:
        """Frames keyed by (index, size); retries with the next reader when the current one fails to decode."""
        while True:
            reader = self._current_reader()
            try:
                return _read_with(reader, wanted)
            except CorruptMediaError as exc:
                if not self._drop_reader(exc):
                    raise

    def _current_reader(self):
        while self._reader is None:
            name = self._candidates[0]
            try:
                self._reader = FRAME_READERS[name]()(self.info)
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


def _read_with(reader, wanted: Mapping[int, Collection[Size]]) -> dict[tuple[int, Size], np.ndarray]:
    """`reader.read_sized` when it scales in the decoder, else its native frames resized with torch per size."""
    if getattr(reader, "scales_in_decoder", False):
        return reader.read_sized(wanted)
    order = np.array(sorted(wanted), dtype=np.int64)
    native = reader.read(order)  # (U, H, W, 3)
    got: dict[tuple[int, Size], np.ndarray] = {}
    for size in {s for sizes in wanted.values() for s in sizes}:
        rows = [k for k, i in enumerate(order) if size in wanted[int(i)]]
        resized = resize_frames(native[rows], size)
        got.update({(int(order[k]), size): frame for k, frame in zip(rows, resized, strict=True)})
    return got
