"""The source's real video frame times and keyframes, read by demuxing (no decoding).

Cuts need them where the nominal frame rate says too little: on variable-frame-rate input a span is
snapped to the frames that really exist there, and stream-copied clips can only start on a keyframe,
so their spans are moved onto keyframes before anything is written.
"""

from __future__ import annotations

import dataclasses
import subprocess
import threading
from array import array
from dataclasses import dataclass

import numpy as np

from avhighlights.core.errors import CorruptMediaError
from avhighlights.core.types import VideoInfo
from avhighlights.pipeline.ffargs import safe_media_arg

PROBE_TIMEOUT_S = 600


@dataclass(frozen=True)
class VideoTimeline:
    """Presentation times of every video frame (sorted, seconds) and which of them are keyframes."""

    frame_s: np.ndarray  # (N,) float64, sorted
    keyframe_s: np.ndarray  # (K,) float64, sorted, a subset of frame_s
    duration_s: float
    # keyframes where decode order and presentation order split cleanly (no frame after it in decode order shows
    # before it, none before it shows after it: closed GOP), and how far each one's decode time lies before it
    clean_keyframe_s: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    clean_lead_s: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))

    def nearest_frame_s(self, time_s: float) -> float:
        """The frame boundary nearest to `time_s`; the video's end counts as a boundary."""
        bounds = np.append(self.frame_s, self.duration_s)
        return float(bounds[int(np.argmin(np.abs(bounds - time_s)))])

    def keyframe_at_or_before_s(self, time_s: float) -> float:
        """The last keyframe at or before `time_s` (the first keyframe when there is none)."""
        index = int(np.searchsorted(self.keyframe_s, time_s + 1e-6, side="right")) - 1
        return float(self.keyframe_s[max(index, 0)])

    def frames_in(self, start_s: float, end_s: float) -> int:
        """How many frames start in [start_s, end_s)."""
        return int(np.searchsorted(self.frame_s, end_s - 1e-6) - np.searchsorted(self.frame_s, start_s - 1e-6))

    def covered_s(self, start_s: float, end_s: float) -> float:
        """How much of [start_s, end_s) lies between the first frame and the video's end (a video stream
        may start after the file does)."""
        return max(0.0, min(end_s, self.duration_s) - max(start_s, float(self.frame_s[0])))

    def longest_frame_s(self, start_s: float, end_s: float) -> float:
        """The longest frame duration around [start_s, end_s): one frame of tolerance for a check."""
        bounds = np.append(self.frame_s, self.duration_s)
        lo = max(int(np.searchsorted(bounds, start_s, side="right")) - 1, 0)
        hi = min(int(np.searchsorted(bounds, end_s, side="left")) + 1, len(bounds) - 1)
        gaps = np.diff(bounds[lo:hi + 1])
        return float(gaps.max()) if gaps.size else 0.0

    def trim_bounds_s(self, start_s: float, end_s: float) -> tuple[float, float]:
        """Trim points half-way between frames, so a trim keeps exactly the frames starting in [start, end)."""
        return self._between_frames_s(start_s), self._between_frames_s(end_s)

    def _between_frames_s(self, time_s: float) -> float:
        index = int(np.searchsorted(self.frame_s, time_s - 1e-6))  # first frame at or after time_s
        if index == 0:
            return 0.0
        if index >= len(self.frame_s):
            return float(self.duration_s + 1.0)
        return float((self.frame_s[index - 1] + self.frame_s[index]) / 2)


def read_timeline(info: VideoInfo) -> VideoTimeline:
    """Demux the first video stream of `info.path` and collect its packet times and keyframe flags, as
    seconds from the file's start time (the origin ffmpeg's `-ss` and trim filters use)."""
    packets, origin_s = _read_packets(info)
    if packets.size == 0:
        raise CorruptMediaError(info.path, "cannot read the video's frame times (ffprobe found no video packets)")
    pts_s, dts_s, is_key = packets[:, 0], packets[:, 1], packets[:, 2] > 0
    order = np.argsort(pts_s, kind="stable")
    frame_s = pts_s[order]
    start_s = float(frame_s[0]) if origin_s is None else origin_s
    keyframe_s = frame_s[is_key[order]] if is_key.any() else frame_s[:1]
    clean = _clean_keyframes(pts_s, is_key)
    lead_s = np.where(np.isnan(dts_s[clean]), 0.0, pts_s[clean] - dts_s[clean])
    by_time = np.argsort(pts_s[clean], kind="stable")
    return VideoTimeline(frame_s - start_s, keyframe_s - start_s, float(info.duration_s),
                         pts_s[clean][by_time] - start_s, lead_s[by_time])


def _read_packets(info: VideoInfo) -> tuple[np.ndarray, float | None]:
    """(N, 3) float64 rows (pts s, dts s or NaN, 1.0 for a keyframe) of the video packets in decode order, and the
    file's start time. ffprobe's listing is read line by line into a flat float array (24 bytes a packet), never
    held whole as text or as Python objects: a 60-min 25-fps source is 90,000 packets."""
    entries = "packet=pts_time,dts_time,flags:format=start_time"
    cmd = ["ffprobe", "-v", "error", "-select_streams", "V:0", "-show_entries", entries, "-of", "compact=nokey=1",
           safe_media_arg(info.path)]
    values, origin_s = array("d"), None
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                          errors="replace") as proc:
        deadline = threading.Timer(PROBE_TIMEOUT_S, proc.kill)
        deadline.start()
        try:
            for line in proc.stdout or ():
                origin_s = _take_line(line.rstrip("\n"), values, origin_s)
        finally:
            deadline.cancel()
    if proc.returncode != 0:
        return np.zeros((0, 3)), None
    return np.frombuffer(values, dtype=np.float64).reshape(-1, 3), origin_s


def _take_line(line: str, values: array, origin_s: float | None) -> float | None:
    """Append one `packet|pts|dts|flags` row to `values`; returns the start time a `format|start` row gives."""
    kind, *fields = line.split("|")
    try:
        if kind == "packet" and len(fields) >= 3:
            pts_s = float(fields[0])
            values.extend((pts_s, _float_or_nan(fields[1]), 1.0 if "K" in fields[2] else 0.0))
        elif kind == "format" and fields:
            return float(fields[0])
    except ValueError:
        pass
    return origin_s


def _float_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _clean_keyframes(pts_s: np.ndarray, is_key: np.ndarray) -> np.ndarray:
    """Indices (decode order) of keyframes that every earlier packet shows before and every later one after."""
    shown_before = np.maximum.accumulate(np.concatenate([[-np.inf], pts_s[:-1]]))
    shown_after = np.minimum.accumulate(pts_s[::-1])[::-1]
    return np.flatnonzero(is_key & (shown_before < pts_s) & (shown_after >= pts_s))
