"""The default frame reader: PyAV (FFmpeg's libraries in-process), one forward decode, scaled in the decoder.

Every frame is decoded (inter-coded video leaves no choice) but only the frames asked for are converted to RGB,
directly at the requested size by swscale (bilinear, which widens its kernel when shrinking, i.e. antialiased):
no full-resolution RGB frame and no float resize exist. Reads with ascending indices continue the same decode
without seeking, so serving a whole video in chunks costs one decode. Frame times come from a demux pass over the
packets (no decoding): presentation times minus the container's start time, as the ffmpeg reader has them.
Frames are stored-orientation in the file; they are scaled to the stored shape and turned upright with `np.rot90`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from avhighlights.core.errors import CorruptMediaError
from avhighlights.core.frame_requests import Size
from avhighlights.core.types import VideoInfo
from avhighlights.pipeline.ffargs import safe_media_arg
from avhighlights.pipeline.frames import GROUP_GAP_S, upright

INTERPOLATION = "BILINEAR"


class PyavReader:
    """Sequential decoding with seeks only backwards or over gaps longer than `GROUP_GAP_S`."""

    name = "pyav"
    scales_in_decoder = True

    def __init__(self, info: VideoInfo):
        self.info = info
        self.frames_decoded = 0  # every frame the decoder produced, for tests and measurements
        try:
            self._container = av.open(safe_media_arg(info.path))
            self._stream = self._container.streams.video[0]
            self._pts = self._packet_pts()
        except (av.error.FFmpegError, IndexError, OSError) as exc:
            raise CorruptMediaError(info.path, f"PyAV cannot open the video ({exc})") from exc
        if len(self._pts) == 0:
            raise CorruptMediaError(info.path, "PyAV found no video packets")
        start_s = (self._container.start_time or 0) / av.time_base
        self.timestamps_s = self._pts * float(self._stream.time_base) - start_s  # (N,)
        self._stream.thread_type = "AUTO"
        self._frames: Iterator[av.VideoFrame] | None = None
        self._position = -1  # index of the last decoded frame
        self._rotated = info.rotation_deg in (90, 270)
        self._reformatter = VideoReformatter()

    def _packet_pts(self) -> np.ndarray:
        pts = [p.pts for p in self._container.demux(self._stream) if p.pts is not None and p.size > 0]
        self._container.seek(0, stream=self._stream, backward=True)
        return np.unique(np.asarray(pts, dtype=np.int64))  # (N,) sorted

    def read(self, indices: np.ndarray) -> np.ndarray:
        """Upright native (len(indices), H, W, 3) uint8 frames."""
        indices = np.asarray(indices, dtype=np.int64)
        got = self.read_sized({int(i): (None,) for i in indices})
        return np.stack([got[int(i), None] for i in indices])

    def read_sized(self, wanted: Mapping[int, Collection[Size]]) -> dict[tuple[int, Size], np.ndarray]:
        """Upright (h, w, 3) uint8 frames keyed by (index, size): each wanted frame decoded once and converted
        once per size it is wanted at."""
        order = np.array(sorted(wanted), dtype=np.int64)
        got: dict[tuple[int, Size], np.ndarray] = {}
        try:
            for index, frame in self._decode_through(order):
                got.update({(index, size): self._convert(frame, size) for size in wanted[index]})
        except av.error.FFmpegError as exc:
            raise CorruptMediaError(self.info.path, f"PyAV failed to decode frames ({exc})") from exc
        missing = sorted(i for i in wanted if any((i, size) not in got for size in wanted[i]))
        if missing:
            raise CorruptMediaError(self.info.path, f"PyAV decoded no frame {missing[0]} ({len(missing)} missing)")
        return got

    def _decode_through(self, wanted: np.ndarray) -> Iterator[tuple[int, av.VideoFrame]]:
        """(index, frame) for the wanted indices, decoding forward from the current position (or a seek)."""
        first, last = int(wanted[0]), int(wanted[-1])
        behind = first <= self._position
        far = self._position >= 0 and self.timestamps_s[first] - self.timestamps_s[self._position] > GROUP_GAP_S
        if self._frames is None or behind or far:
            self._seek(first)
        targets = set(wanted.tolist())
        while self._position < last:
            frame = next(self._frames, None)
            if frame is None:
                return
            self.frames_decoded += 1
            self._position = self._index_of(frame)
            if self._position in targets:
                yield self._position, frame

    def _seek(self, index: int) -> None:
        """Position the decoder on the keyframe at or before frame `index`."""
        self._container.seek(int(self._pts[index]), stream=self._stream, backward=True)
        self._frames = self._container.decode(self._stream)
        self._position = -1

    def _index_of(self, frame: av.VideoFrame) -> int:
        if frame.pts is None:
            return self._position + 1
        return int(np.clip(np.searchsorted(self._pts, frame.pts, side="right") - 1, 0, len(self._pts) - 1))

    def _convert(self, frame: av.VideoFrame, size: Size) -> np.ndarray:
        # One reformatter for the whole read keeps swscale's context (and its filter tables) between frames of the
        # same size: `frame.reformat` builds a new one per frame, ~7 ms against ~0.5 ms for 640x360 -> 224x224.
        if size is None:
            rgb = self._reformatter.reformat(frame, format="rgb24").to_ndarray()
        else:
            height, width = (size[1], size[0]) if self._rotated else size  # the stored orientation
            rgb = self._reformatter.reformat(frame, width=width, height=height, format="rgb24",
                                             interpolation=INTERPOLATION).to_ndarray()
        return upright(rgb[None], self.info.rotation_deg)[0]

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
            self._frames = None
