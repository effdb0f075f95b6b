"""Fallback frame readers: decord (random access) and an ffmpeg pipe, plus frame selection (the default reader,
PyAV, is in `pyav_reader`).

Both readers know every frame's presentation time (seconds from the file start) and return
upright RGB uint8 frames for a list of frame indices; indices never leave `pipeline.media`.
decord 0.6.0 applies the display matrix itself (tests compare it with ffmpeg's autorotation);
the ffmpeg reader decodes with `-noautorotate` and turns frames upright with `np.rot90`.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile

import ffmpeg
import numpy as np

from avhighlights.core.errors import CorruptMediaError
from avhighlights.core.types import VideoInfo
from avhighlights.pipeline.ffargs import safe_media_arg
from avhighlights.pipeline.probe import VIDEO_MAP, last_stderr_line

log = logging.getLogger(__name__)

TS_TOLERANCE_S = 1e-4  # frame timestamps are float32-rounded by decord
GROUP_GAP_S = 5.0  # the ffmpeg reader decodes frames closer than this in one sequential pass


def frame_index_at(timestamps_s: np.ndarray, times_s: np.ndarray) -> np.ndarray:
    """Index of the frame on screen at each time: the last frame starting at or before it."""
    idx = np.searchsorted(timestamps_s, np.asarray(times_s, dtype=np.float64) + TS_TOLERANCE_S, side="right")
    return np.clip(idx - 1, 0, len(timestamps_s) - 1)


def clip_indices(timestamps_s: np.ndarray, start_s: float, end_s: float, n_frames: int) -> np.ndarray:
    """The first `n_frames` frames starting in [start_s, end_s), last one repeated when fewer;
    the frame on screen at `start_s` when none starts inside the span."""
    lo = int(np.searchsorted(timestamps_s, start_s - TS_TOLERANCE_S, side="left"))
    hi = int(np.searchsorted(timestamps_s, end_s - TS_TOLERANCE_S, side="left"))
    inside = np.arange(lo, min(hi, lo + n_frames))
    if len(inside) == 0:
        inside = frame_index_at(timestamps_s, np.array([start_s]))
    return np.concatenate([inside, np.full(n_frames - len(inside), inside[-1])])


def resize_frames(frames: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Resize (B, H, W, 3) uint8 to `size` = (height, width): torch bilinear with antialiasing."""
    if size is None or tuple(frames.shape[1:3]) == tuple(size):
        return frames
    import torch  # on the first resize only: an audio-only run never loads it
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()  # (B, 3, H, W)
    y = F.interpolate(x, size=tuple(size), mode="bilinear", antialias=True, align_corners=False)
    return y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()  # (B, h, w, 3)


def upright(frames: np.ndarray, rotation_deg: int) -> np.ndarray:
    """Rotate stored (B, H, W, 3) frames counter-clockwise by `rotation_deg` (see probe.py)."""
    k = (rotation_deg // 90) % 4
    return np.ascontiguousarray(np.rot90(frames, k=k, axes=(1, 2))) if k else frames


class DecordReader:
    """Random access through decord's VideoReader (cpu)."""

    name = "decord"

    def __init__(self, info: VideoInfo):
        import decord

        self.info = info
        self._errors = (decord.DECORDError, RuntimeError)
        try:
            self._reader = decord.VideoReader(safe_media_arg(info.path), ctx=decord.cpu(0))
            n = len(self._reader)
            self.timestamps_s = self._reader.get_frame_timestamp(np.arange(n))[:, 0].astype(np.float64)  # (N,)
        except self._errors as exc:
            raise CorruptMediaError(info.path, f"decord cannot open the video ({exc})") from exc
        if n == 0:
            raise CorruptMediaError(info.path, "decord found no video frames")

    def read(self, indices: np.ndarray) -> np.ndarray:
        """Upright (len(indices), H, W, 3) uint8 frames."""
        wanted, inverse = np.unique(indices, return_inverse=True)
        try:
            frames = self._reader.get_batch(wanted.tolist()).asnumpy()  # (U, H, W, 3)
        except self._errors as exc:
            raise CorruptMediaError(self.info.path, f"decord failed to decode frames ({exc})") from exc
        return self._ensure_upright(frames)[inverse]

    def _ensure_upright(self, frames: np.ndarray) -> np.ndarray:
        """decord rotates by the display matrix; if a 90/270 video comes back stored-shape, rotate it."""
        displayed = (self.info.height, self.info.width)
        if self.info.rotation_deg in (90, 270) and frames.shape[1:3] != displayed:
            return upright(frames, self.info.rotation_deg)
        return frames

    def close(self) -> None:
        self._reader = None


class FfmpegReader:
    """Fallback: `ffmpeg -ss` per group of nearby frames, rawvideo rgb24 through a pipe."""

    name = "ffmpeg"

    def __init__(self, info: VideoInfo):
        self.info = info
        self.timestamps_s = self._packet_times_s()
        if len(self.timestamps_s) == 0:
            raise CorruptMediaError(info.path, "no video packets found")
        rotated = info.rotation_deg in (90, 270)
        self._stored_hw = (info.width, info.height) if rotated else (info.height, info.width)

    def _packet_times_s(self) -> np.ndarray:
        try:
            data = ffmpeg.probe(safe_media_arg(self.info.path), select_streams="V:0", show_entries="packet=pts_time")
        except ffmpeg.Error as exc:
            reason = last_stderr_line(exc.stderr)
            raise CorruptMediaError(self.info.path, f"ffprobe cannot list packets ({reason})") from exc
        start_s = float(data.get("format", {}).get("start_time", 0.0) or 0.0)
        pts = [float(p["pts_time"]) for p in data.get("packets", []) if p.get("pts_time") not in (None, "N/A")]
        return np.sort(np.array(pts, dtype=np.float64)) - start_s  # (N,)

    def read(self, indices: np.ndarray) -> np.ndarray:
        """Upright (len(indices), H, W, 3) uint8 frames."""
        wanted, inverse = np.unique(indices, return_inverse=True)
        groups = np.split(wanted, np.flatnonzero(np.diff(self.timestamps_s[wanted]) > GROUP_GAP_S) + 1)
        frames = np.concatenate([self._decode_group(g) for g in groups])  # (U, H, W, 3)
        return upright(frames, self.info.rotation_deg)[inverse]

    def _decode_group(self, indices: np.ndarray) -> np.ndarray:
        """Seek just before the first frame, decode sequentially, keep frames by their offset."""
        first = int(indices[0])
        gaps_s = np.diff(self.timestamps_s)
        margin_s = 0.25 * float(np.min(gaps_s[gaps_s > 0])) if np.any(gaps_s > 0) else 0.001
        seek_s = max(0.0, self.timestamps_s[first] - margin_s)
        offsets = "+".join(f"eq(n\\,{int(i) - first})" for i in indices)
        cmd = ["ffmpeg", "-nostdin", "-v", "error", "-noautorotate", "-ss", f"{seek_s:.6f}", "-i",
               safe_media_arg(self.info.path), "-map", VIDEO_MAP, "-vf", f"select='{offsets}'", "-fps_mode",
               "passthrough", "-frames:v", str(len(indices)), "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:"]
        return self._run(cmd, len(indices))

    def _run(self, cmd: list[str], n_expected: int) -> np.ndarray:
        height, width = self._stored_hw
        with tempfile.TemporaryFile() as stderr:
            result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=stderr, timeout=600)
            stderr.seek(0)
            reason = last_stderr_line(stderr.read())
        n_got = len(result.stdout) // (height * width * 3)
        if n_got != n_expected:
            raise CorruptMediaError(self.info.path, f"ffmpeg decoded {n_got} of {n_expected} frames ({reason})")
        return np.frombuffer(result.stdout, np.uint8).reshape(n_got, height, width, 3)

    def close(self) -> None:
        """Nothing is held open between reads."""

