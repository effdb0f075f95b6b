"""Probe and validate one input file: ffprobe metadata, a cheap decode check and a content hash.

Rotation convention: `VideoInfo.rotation_deg` is the display-matrix angle as ffprobe reports it
(`av_display_rotation_get`, counter-clockwise), normalised to 0/90/180/270. The upright picture is
`np.rot90(stored_frame, k=rotation_deg // 90)`, which is what ffmpeg's own autorotation shows
(checked in tests/test_media.py). A legacy `rotate` tag is clockwise, so it maps to `-rotate`.
"""

from __future__ import annotations

import hashlib
import math
import re
import subprocess
from fractions import Fraction
from pathlib import Path

import ffmpeg
import numpy as np

from avhighlights.core.errors import (
    CorruptMediaError,
    MissingFileError,
    NotMediaError,
    NoVideoStreamError,
    UnknownDurationError,
)
from avhighlights.core.types import VideoInfo
from avhighlights.pipeline.ffargs import safe_media_arg
from avhighlights.pipeline.progress import for_video, report_count

HASH_BLOCK_BYTES = 1 << 20
VFR_TOLERANCE = 0.005  # relative |avg - r| frame-rate difference that counts as variable
N_PACKETS_CHECKED = 120  # packet timestamps read for the cheap irregularity check
REORDER_MARGIN = 8  # last sorted timestamps ignored: B-frames shown there may come after the packets read
TIMECODE_PATTERN = re.compile(r"\d{2}:\d{2}:\d{2}[:;.,]\d{2,3}")
VIDEO_MAP = "0:V:0"  # first video stream that is not an attached picture (cover art)

# Leading bytes of containers ffmpeg reads: a file that starts like one is corrupt, not "not media".
_MAGIC_AT = ((4, b"ftyp"), (4, b"moov"), (4, b"mdat"), (4, b"free"), (0, b"\x1a\x45\xdf\xa3"),
             (0, b"RIFF"), (0, b"OggS"), (0, b"FLV"), (0, b"ID3"), (0, b"fLaC"), (0, b"\x00\x00\x01\xba"),
             (0, b"\x30\x26\xb2\x75"))


def content_sha256(path: str | Path) -> str:
    """sha256 of the file's bytes, read in 1-MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(HASH_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def probe(path: str | Path, sha256: str | None = None) -> VideoInfo:
    """Validate `path` as a usable video and describe it; raises a typed MediaError otherwise. `sha256` is the
    content hash when the caller has just computed it (the watcher does), so the file is not read twice."""
    path = Path(path)
    _check_regular_file(path)
    data = _ffprobe(path)
    video = _video_stream(path, data)
    audio = _first_stream(data, "audio")
    duration_s = _duration_s(path, data, video)
    fps, variable = _frame_rate(path, video)
    _decode_check(path, duration_s, has_audio=audio is not None)
    rotation = _rotation_deg(video)
    width, height = int(video.get("width", 0)), int(video.get("height", 0))
    if rotation in (90, 270):
        width, height = height, width
    return VideoInfo(
        path=path, sha256=sha256 or content_sha256(path), duration_s=duration_s, fps=fps,
        variable_frame_rate=variable or _irregular_packets(path), width=width, height=height,
        rotation_deg=rotation, video_codec=str(video.get("codec_name", "unknown")),
        has_audio=audio is not None,
        audio_codec=audio.get("codec_name") if audio else None,
        audio_sample_rate=int(audio["sample_rate"]) if audio and audio.get("sample_rate") else None,
        audio_channels=int(audio["channels"]) if audio and audio.get("channels") else None,
        container=str(data.get("format", {}).get("format_name", "")), size_bytes=path.stat().st_size,
        start_timecode=_start_timecode(data, video),
    )


def probe_all(paths, progress=None, stage: str = "probe") -> list[VideoInfo]:
    """`probe` each path in order, reporting "k/n files" on `stage` (the decode check and the content hash take
    about a second per file, so a library is never probed in silence); a bad file raises, naming it."""
    paths = list(paths)
    infos = []
    for i, path in enumerate(paths):
        with for_video(progress, path):
            if i == 0:
                report_count(progress, stage, 0, len(paths), "files")
            infos.append(probe(path))
            report_count(progress, stage, i + 1, len(paths), "files")
    return infos


def _check_regular_file(path: Path) -> None:
    if not path.exists():
        raise MissingFileError(path, "file not found")
    if path.is_dir():
        raise MissingFileError(path, "is a directory, not a video file")
    if not path.is_file():
        raise MissingFileError(path, "is not a regular file")
    if path.stat().st_size == 0:
        raise NotMediaError(path, "empty file (0 bytes)")


def _ffprobe(path: Path) -> dict:
    try:
        return ffmpeg.probe(safe_media_arg(path))
    except ffmpeg.Error as exc:
        reason = last_stderr_line(exc.stderr) or "ffprobe failed"
        if _looks_like_media(path):
            raise CorruptMediaError(path, f"truncated or corrupt container ({reason})") from None
        raise NotMediaError(path, f"not a media file ffprobe can read ({reason})") from None


def _looks_like_media(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(16)
    return any(head[at:at + len(magic)] == magic for at, magic in _MAGIC_AT) or head[:1] == b"\x47"


def last_stderr_line(stderr: bytes | None) -> str:
    lines = (stderr or b"").decode("utf-8", "replace").strip().splitlines()
    return lines[-1].strip() if lines else ""


def _first_stream(data: dict, codec_type: str) -> dict | None:
    for stream in data.get("streams", []):
        if stream.get("codec_type") == codec_type and not stream.get("disposition", {}).get("attached_pic"):
            return stream
    return None


def _video_stream(path: Path, data: dict) -> dict:
    video = _first_stream(data, "video")
    if video is not None:
        return video
    if _first_stream(data, "audio") is not None:
        raise NoVideoStreamError(path, "audio-only file (no video stream)")
    raise NoVideoStreamError(path, "no video stream")


def _duration_s(path: Path, data: dict, video: dict) -> float:
    candidates = (data.get("format", {}).get("duration"), video.get("duration"),
                  _tag(video, "duration"))
    for value in candidates:
        seconds = _parse_seconds(value)
        if seconds is not None and seconds > 0:
            return seconds
    raise UnknownDurationError(path, "duration is zero or unknown")


def _parse_seconds(value: object) -> float | None:
    """Seconds from '12.5' or a Matroska tag like '00:01:02.500000000'; None if unparsable."""
    if value in (None, "", "N/A"):
        return None
    text = str(value)
    try:
        if ":" in text:
            hours, minutes, seconds = text.split(":")
            return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        seconds = float(text)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) else None


def _tag(stream: dict, key: str) -> str | None:
    for name, value in stream.get("tags", {}).items():
        if name.lower() == key:
            return value
    return None


def _start_timecode(data: dict, video: dict) -> str | None:
    """The source timecode: the `timecode` tag of the video stream, else of a data (tmcd) stream, else of
    the container (Matroska/WebM); None when absent or not HH:MM:SS:FF (';' or '.' before FF = drop-frame)."""
    data_streams = [s for s in data.get("streams", []) if s.get("codec_type") == "data"]
    for holder in (video, *data_streams, data.get("format", {})):
        tag = (_tag(holder, "timecode") or "").strip()
        if TIMECODE_PATTERN.fullmatch(tag):
            return tag
    return None


def _parse_rate(text: str | None) -> Fraction | None:
    try:
        rate = Fraction(text) if text else None
    except (ValueError, ZeroDivisionError):
        return None
    return rate if rate and rate > 0 else None


def _frame_rate(path: Path, video: dict) -> tuple[Fraction, bool]:
    """(fps, variable): the average rate (else the base rate); variable when they disagree."""
    avg, base = _parse_rate(video.get("avg_frame_rate")), _parse_rate(video.get("r_frame_rate"))
    fps = avg or base
    if fps is None:
        raise CorruptMediaError(path, "video stream has no frame rate")
    variable = avg is not None and base is not None and abs(avg - base) > VFR_TOLERANCE * base
    return fps, variable


def _rotation_deg(video: dict) -> int:
    for side_data in video.get("side_data_list", []):
        if "rotation" in side_data:
            return _normalise_rotation(float(side_data["rotation"]))
    tag = _tag(video, "rotate")
    return _normalise_rotation(-float(tag)) if tag not in (None, "") else 0


def _normalise_rotation(degrees: float) -> int:
    return int(round(degrees / 90.0)) % 4 * 90


def _irregular_packets(path: Path) -> bool:
    """True when the first packets' timestamps are unevenly spaced (cheap: demux only)."""
    try:
        data = ffmpeg.probe(safe_media_arg(path), select_streams="V:0", show_entries="packet=pts_time",
                            read_intervals=f"%+#{N_PACKETS_CHECKED}")
    except ffmpeg.Error:
        return False
    pts = np.array(sorted(float(p["pts_time"]) for p in data.get("packets", [])
                          if p.get("pts_time") not in (None, "N/A")))
    gaps_s = np.diff(pts[:-REORDER_MARGIN])
    if len(gaps_s) < 3:
        return False
    median_s = float(np.median(gaps_s))
    return median_s > 0 and bool(np.any(np.abs(gaps_s - median_s) > 0.5 * median_s))


def _decode_check(path: Path, duration_s: float, has_audio: bool) -> None:
    """Decode the first video frame and reach the last second (video, or else audio)."""
    if not _decodes(path, VIDEO_MAP, seek_s=None):
        raise CorruptMediaError(path, "cannot decode the first video frame")
    seek_s = max(0.0, duration_s - 1.0)
    if _decodes(path, VIDEO_MAP, seek_s) or (has_audio and _decodes(path, "0:a:0", seek_s)):
        return
    raise CorruptMediaError(path, f"truncated: nothing decodes in the last second (from {seek_s:.2f} s)")


def _decodes(path: Path, stream_map: str, seek_s: float | None) -> bool:
    """Whether ffmpeg produces at least one decoded video frame / audio sample from `seek_s`."""
    seek = ["-ss", f"{seek_s:.3f}"] if seek_s else []
    is_video = stream_map.startswith("0:V")
    out_opts = (["-frames:v", "1", "-vf", "scale=16:16", "-pix_fmt", "gray"] if is_video
                else ["-ac", "1", "-ar", "8000", "-t", "1"])
    cmd = ["ffmpeg", "-nostdin", "-v", "error", *seek, "-i", safe_media_arg(path), "-map", stream_map, *out_opts,
           "-f", "rawvideo" if is_video else "u8", "pipe:"]
    result = subprocess.run(cmd, capture_output=True, timeout=120)
    return len(result.stdout) > 0
