"""Small JPEG stills of a video at given times (ffmpeg, one frame each, upright, width `THUMB_WIDTH_PX`)."""

from __future__ import annotations

import subprocess

from avhighlights.core.errors import MediaError
from avhighlights.core.types import VideoInfo
from avhighlights.pipeline.ffargs import safe_media_arg
from avhighlights.pipeline.synth import ffmpeg_binary

THUMB_WIDTH_PX = 320
JPEG_QUALITY = 5  # ffmpeg mjpeg -q:v, 2 (best) .. 31
TIMEOUT_S = 60.0


class ThumbnailError(MediaError):
    """ffmpeg could not take a still from the video."""


def still_jpeg(info: VideoInfo, time_s: float, width_px: int = THUMB_WIDTH_PX) -> bytes:
    """The frame shown at `time_s` (clamped into the video) as JPEG bytes, `width_px` wide."""
    last_frame_s = max(0.0, info.duration_s - 1.5 / float(info.fps)) if info.fps > 0 else info.duration_s
    seek_s = min(max(0.0, float(time_s)), last_frame_s)
    source = info.path
    args = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-nostdin", "-ss", f"{seek_s:.3f}",
            "-i", safe_media_arg(info.path), "-map", "0:v:0", "-frames:v", "1", "-vf", f"scale={width_px}:-2",
            "-c:v", "mjpeg", "-q:v", str(JPEG_QUALITY), "-f", "image2pipe", "-"]
    try:
        result = subprocess.run(args, capture_output=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise ThumbnailError(source, f"ffmpeg took over {TIMEOUT_S:.0f} s for a still at {seek_s:.3f} s") from exc
    if result.returncode != 0 or not result.stdout.startswith(b"\xff\xd8"):
        tail = " | ".join(result.stderr.decode("utf-8", "replace").strip().splitlines()[-2:]) or "no frame"
        raise ThumbnailError(source, f"no still at {seek_s:.3f} s: {tail}")
    return result.stdout
