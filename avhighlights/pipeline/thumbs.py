"""Small JPEG stills of a video at given times (ffmpeg, one frame each, upright, width `THUMB_WIDTH_PX`).

`stills_jpeg` takes many in one ffmpeg run (one input seeked to each time, one JPEG output each): the
process start-up, not the decoding, is most of a single still's cost, so a report of 30 clips costs a few
processes instead of 30. A still the batch could not take is taken again on its own, which gives its error.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from avhighlights.core.errors import MediaError
from avhighlights.core.types import VideoInfo
from avhighlights.pipeline.ffargs import safe_media_arg
from avhighlights.pipeline.synth import ffmpeg_binary

THUMB_WIDTH_PX = 320
JPEG_QUALITY = 5  # ffmpeg mjpeg -q:v, 2 (best) .. 31
TIMEOUT_S = 60.0
STILLS_PER_PROCESS = 8  # inputs (decoders) one ffmpeg opens at once: bounds its memory on large sources


class ThumbnailError(MediaError):
    """ffmpeg could not take a still from the video."""


def _seek_s(info: VideoInfo, time_s: float) -> float:
    """`time_s` clamped into the video (to its last frame)."""
    last_frame_s = max(0.0, info.duration_s - 1.5 / float(info.fps)) if info.fps > 0 else info.duration_s
    return min(max(0.0, float(time_s)), last_frame_s)


def _output_args(index: int, width_px: int) -> list[str]:
    return ["-map", f"{index}:v:0", "-frames:v", "1", "-vf", f"scale={width_px}:-2", "-c:v", "mjpeg",
            "-q:v", str(JPEG_QUALITY)]


def stills_jpeg(info: VideoInfo, times_s: list[float], width_px: int = THUMB_WIDTH_PX) -> list[bytes | ThumbnailError]:
    """The frames shown at `times_s`, `STILLS_PER_PROCESS` per ffmpeg run; each item is the JPEG bytes or the
    error of that still."""
    stills: list[bytes | ThumbnailError] = []
    for first in range(0, len(times_s), STILLS_PER_PROCESS):
        stills += _batch(info, times_s[first:first + STILLS_PER_PROCESS], width_px)
    return stills


def _batch(info: VideoInfo, times_s: list[float], width_px: int) -> list[bytes | ThumbnailError]:
    with tempfile.TemporaryDirectory(prefix="avh-stills-") as folder:
        paths = [Path(folder) / f"still{i:03d}.jpg" for i in range(len(times_s))]
        inputs = [a for t in times_s for a in ("-threads", "1", "-ss", f"{_seek_s(info, t):.3f}", "-i",
                                                 safe_media_arg(info.path))]
        outputs = [a for i, path in enumerate(paths) for a in (*_output_args(i, width_px), "-f", "image2",
                                                                "-update", "1", str(path))]
        args = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *inputs, *outputs]
        try:
            subprocess.run(args, capture_output=True, timeout=TIMEOUT_S * len(times_s))
        except subprocess.TimeoutExpired:
            pass  # every still missing below is taken again on its own, which says why
        taken = [path.read_bytes() if path.is_file() else b"" for path in paths]
    return [jpeg if jpeg.startswith(b"\xff\xd8") else _single_or_error(info, t, width_px)
            for jpeg, t in zip(taken, times_s, strict=True)]


def _single_or_error(info: VideoInfo, time_s: float, width_px: int) -> bytes | ThumbnailError:
    try:
        return still_jpeg(info, time_s, width_px)
    except ThumbnailError as error:
        return error


def still_jpeg(info: VideoInfo, time_s: float, width_px: int = THUMB_WIDTH_PX) -> bytes:
    """The frame shown at `time_s` (clamped into the video) as JPEG bytes, `width_px` wide."""
    seek_s = _seek_s(info, time_s)
    source = info.path
    args = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-nostdin", "-ss", f"{seek_s:.3f}",
            "-i", safe_media_arg(info.path), *_output_args(0, width_px), "-f", "image2pipe", "-"]
    try:
        result = subprocess.run(args, capture_output=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise ThumbnailError(source, f"ffmpeg took over {TIMEOUT_S:.0f} s for a still at {seek_s:.3f} s") from exc
    if result.returncode != 0 or not result.stdout.startswith(b"\xff\xd8"):
        tail = " | ".join(result.stderr.decode("utf-8", "replace").strip().splitlines()[-2:]) or "no frame"
        raise ThumbnailError(source, f"no still at {seek_s:.3f} s: {tail}")
    return result.stdout
