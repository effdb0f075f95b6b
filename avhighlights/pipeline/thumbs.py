"""Small JPEG stills of a video at given times (one frame each, upright, width `THUMB_WIDTH_PX`), taken in-process.

`stills_jpeg` opens the source once with PyAV (FFmpeg's libraries) and, for each time, seeks to the keyframe before
it, decodes up to the frame shown there, scales it (swscale, bicubic) and encodes it as JPEG (FFmpeg's mjpeg at
quantizer `JPEG_QUALITY`). One open file means one copy of the container's index: an ffmpeg process with one
input per still held a copy per input (8 inputs of a 60-min MP4: 173 MB against 103 MB for a 1-min one), and
opening the source once per still re-read its index for each of them. A still that cannot be taken is that item's
`ThumbnailError`; the others are still taken.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

from avhighlights.core.errors import MediaError
from avhighlights.core.types import VideoInfo
from avhighlights.pipeline.ffargs import safe_media_arg
from avhighlights.pipeline.frames import upright

if TYPE_CHECKING:
    import av  # imported where used: the light path's import chain stays free of PyAV

THUMB_WIDTH_PX = 320
JPEG_QUALITY = 5  # mjpeg quantizer (as ffmpeg's -q:v), 2 (best) .. 31
FRAME_TIME_EPS_S = 5e-4  # a frame counts as at `t` when it starts this close before it (times are printed to 1 ms)


class ThumbnailError(MediaError):
    """No still could be taken from the video."""


def _seek_s(info: VideoInfo, time_s: float) -> float:
    """`time_s` clamped into the video (to its last frame)."""
    last_frame_s = max(0.0, info.duration_s - 1.5 / float(info.fps)) if info.fps > 0 else info.duration_s
    return min(max(0.0, float(time_s)), last_frame_s)


def stills_jpeg(info: VideoInfo, times_s: list[float], width_px: int = THUMB_WIDTH_PX) -> list[bytes | ThumbnailError]:
    """The frames shown at `times_s` (in that order), all from one opened file; each item is the JPEG bytes or
    the error of that still."""
    import av

    try:
        container = av.open(safe_media_arg(info.path))
    except (av.FFmpegError, OSError) as exc:
        return [ThumbnailError(info.path, f"no still at {_seek_s(info, t):.3f} s: cannot open the video ({exc})")
                for t in times_s]
    with container:
        return [_still_or_error(container, info, _seek_s(info, t), width_px) for t in times_s]


def still_jpeg(info: VideoInfo, time_s: float, width_px: int = THUMB_WIDTH_PX) -> bytes:
    """The frame shown at `time_s` (clamped into the video) as JPEG bytes, `width_px` wide."""
    (still,) = stills_jpeg(info, [time_s], width_px)
    if isinstance(still, ThumbnailError):
        raise still
    return still


def _still_or_error(container, info: VideoInfo, seek_s: float, width_px: int) -> bytes | ThumbnailError:
    import av

    try:
        frame = _frame_at(container, seek_s)
    except (av.FFmpegError, IndexError) as exc:
        return ThumbnailError(info.path, f"no still at {seek_s:.3f} s: {exc}")
    if frame is None:
        return ThumbnailError(info.path, f"no still at {seek_s:.3f} s: no frame decoded there")
    return _jpeg(frame, info.rotation_deg, width_px)


def _frame_at(container, time_s: float) -> av.VideoFrame | None:
    """The first frame starting at or after `time_s` (seconds from the file's start, as ffmpeg's -ss counts),
    else the last one decoded (the video's last frame shows until its end)."""
    import av

    stream = container.streams.video[0]
    target_s = time_s + (container.start_time or 0) / av.time_base
    container.seek(max(0, int(target_s / stream.time_base)), stream=stream, backward=True)
    last = None
    for frame in container.decode(stream):
        if frame.pts is None:
            continue
        last = frame
        if frame.time >= target_s - FRAME_TIME_EPS_S:
            break
    return last


def _jpeg(frame: av.VideoFrame, rotation_deg: int, width_px: int) -> bytes:
    """`frame` turned upright, scaled to `width_px` wide (even height, as ffmpeg's scale=W:-2) and JPEG-encoded."""
    import av

    turned = (rotation_deg // 90) % 2 == 1
    shown_w, shown_h = (frame.height, frame.width) if turned else (frame.width, frame.height)
    height_px = max(2, round(width_px * shown_h / (2 * shown_w)) * 2)
    stored_w, stored_h = (height_px, width_px) if turned else (width_px, height_px)
    rgb = frame.reformat(width=stored_w, height=stored_h, format="rgb24", interpolation="BICUBIC").to_ndarray()
    image = av.VideoFrame.from_ndarray(upright(rgb[None], rotation_deg)[0], format="rgb24")
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width_px, height_px, "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    encoder.qmin = encoder.qmax = JPEG_QUALITY  # a fixed quantizer
    packets = encoder.encode(image.reformat(format="yuvj420p")) + encoder.encode(None)
    return b"".join(bytes(packet) for packet in packets)

