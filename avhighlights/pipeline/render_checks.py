"""Checks that make a render fail loudly instead of writing wrong clips with exit 0.

- The source must be the video the document was scored on: same size and sha256 (the hash is only
  recomputed when size or mtime differ from the last verified state, kept in the folder's manifest),
  and the duration in the document must be the file's own.
- Every written clip (and the reel) must hold the source's frames of its span: as many video frames
  as the source has there (one frame of tolerance) and video/audio as long as the span, so a decode
  that stops early or skips a damaged range fails the render (exit 3, naming the source).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from avhighlights.core.errors import ConfigError, CorruptMediaError, MediaError, MissingFileError
from avhighlights.core.types import VideoInfo
from avhighlights.pipeline.ffargs import safe_media_arg
from avhighlights.pipeline.probe import content_sha256

DURATION_MISMATCH_FRAMES = 1.5  # the document's duration may differ from the file's by this many frames
AUDIO_PACKET_SLACK = 2  # encoder priming/padding: audio may differ by this many of its packets besides one frame


class SourceChangedError(MediaError):
    """The input video is not the one the document was made from (exit 3)."""


class ShortDecodeError(CorruptMediaError):
    """A written clip holds fewer frames or seconds than its span: the source did not decode there."""


@dataclass(frozen=True)
class SourceState:
    """What identifies a verified source cheaply: path, size, mtime and the sha256 found for them."""

    path: str
    size_bytes: int
    mtime_ns: int
    sha256: str

    def to_json(self) -> dict:
        return {"path": self.path, "size_bytes": self.size_bytes, "mtime_ns": self.mtime_ns, "sha256": self.sha256}

    @classmethod
    def from_json(cls, data: object) -> SourceState | None:
        try:
            return cls(str(data["path"]), int(data["size_bytes"]), int(data["mtime_ns"]), str(data["sha256"]))
        except (KeyError, TypeError, ValueError):
            return None


_PROBED: dict[str, SourceState] = {}  # sources hashed by a probe in this process, by resolved path


def remember_probed(info: VideoInfo) -> VideoInfo:
    """Note that `info` was just probed (and hashed), so rendering it in this process does not hash it again
    unless its size or mtime change meanwhile."""
    path = Path(info.path).resolve()
    stat = path.stat()
    _PROBED[str(path)] = SourceState(str(path), stat.st_size, stat.st_mtime_ns, info.sha256)
    return info


def verify_source(info: VideoInfo, known: SourceState | None) -> SourceState:
    """Raise unless `info.path` is still the scored video; returns its state for the next render.
    `known` is the state a previous render verified (from the folder's manifest)."""
    path = Path(info.path)
    if not path.is_file():
        raise MissingFileError(path, "input video is missing, cannot cut clips")
    stat = path.stat()
    if info.size_bytes and stat.st_size != info.size_bytes:
        raise SourceChangedError(path, f"the video changed since it was scored ({stat.st_size} bytes, highlights.json "
                                       f"says {info.size_bytes}); score it again")
    now = (str(path), stat.st_size, stat.st_mtime_ns)
    trusted = [s.sha256 for s in (known, _PROBED.get(str(path.resolve())))
               if s is not None and (s.path, s.size_bytes, s.mtime_ns) == now]
    digest = trusted[0] if trusted else content_sha256(path)
    if digest != info.sha256:
        raise SourceChangedError(path, f"the video changed since it was scored (sha256 {digest[:12]}..., "
                                       f"highlights.json says {info.sha256[:12]}...); score it again")
    return SourceState(*now, digest)


def check_document_duration(info: VideoInfo, file_duration_s: float, doc_path: Path | None) -> None:
    """The document's `video.duration_s` must be the file's (edits cannot stretch the video)."""
    tolerance_s = DURATION_MISMATCH_FRAMES / float(info.fps)
    if abs(info.duration_s - file_duration_s) > tolerance_s:
        raise ConfigError(f"{doc_path or info.path}: field 'video.duration_s': {info.duration_s} does not match "
                          f"the video's {file_duration_s:.3f} s ({info.path})")


@dataclass(frozen=True)
class StreamMeasure:
    """What a written file holds in one stream: its packets, their time range and summed duration."""

    n_packets: int
    span_s: float  # the stream's duration (as players show it), else first packet start to last packet end
    total_s: float  # sum of packet durations
    longest_packet_s: float
    n_decoded: int | None = None  # frames that decode (only when measured with decode=True)


def measure_written(path: Path, *, decode: bool = False) -> dict[str, StreamMeasure]:
    """Per stream kind ("video", "audio") of a written file, demuxed in-process (PyAV: the same libavformat
    as ffprobe, without a process per file); with `decode`, the video frames that decode are counted too.
    A file that cannot be opened measures as holding nothing."""
    import av  # imported here: only a render reads written files

    rows: dict[str, list[tuple[float, float]]] = {}
    n_decoded = 0
    try:
        with av.open(safe_media_arg(path)) as container:
            kinds = {s.index: s.type for s in container.streams}
            declared = {s.type: float(s.duration * s.time_base) if s.duration and s.time_base else None
                        for s in container.streams}
            first_video = container.streams.video[0].index if container.streams.video else None
            for packet in container.demux():
                if decode and packet.stream.index == first_video:
                    n_decoded += _decoded_frames(packet)
                kind = kinds.get(packet.stream.index)
                if packet.pts is None or packet.size == 0 or packet.time_base is None or kind not in ("video",
                                                                                                       "audio"):
                    continue  # the demuxer's end-of-stream (flush) packets
                rows.setdefault(kind, []).append((float(packet.pts * packet.time_base),
                                                  float((packet.duration or 0) * packet.time_base)))
    except (av.FFmpegError, OSError):
        return {}
    return {kind: StreamMeasure(len(r), declared.get(kind) or max(p + d for p, d in r) - min(p for p, _ in r),
                                sum(d for _, d in r), max(d for _, d in r),
                                n_decoded if decode and kind == "video" else None) for kind, r in rows.items()}


def _decoded_frames(packet) -> int:
    """Frames that decoding `packet` yields (a flush packet yields the decoder's last ones); 0 where it fails."""
    import av

    try:
        return len(packet.decode())
    except av.FFmpegError:
        return 0


@dataclass(frozen=True)
class Expected:
    """What a written clip must hold: the span, the source's frame count there and one frame of tolerance."""

    start_s: float
    end_s: float
    n_frames: int
    video_s: float  # the part of the span the source's video covers
    frame_s: float
    has_audio: bool
    decoded: bool = True  # re-encoded: audio must add up to the span (stream copy cuts audio packets as they fall)
    missing_frames_ok: int = 1  # stream copy may drop a few leading frames that reference the previous GOP
    may_run_long: bool = False  # a concat-demuxer join of copied clips keeps each part's start offset


def check_written(path: Path, expected: Expected, source: Path, *, decode: bool = False) -> None:
    """Raise ShortDecodeError unless the file at `path` holds the expected frames and seconds; with `decode`, its
    frames must also decode (copied frames are never decoded while cutting, so a damaged source range is only
    found by decoding the written file)."""
    streams = measure_written(path, decode=decode)
    span_s, label = expected.end_s - expected.start_s, f"{path.name} [{expected.start_s:.2f}, {expected.end_s:.2f})"
    video = streams.get("video")
    if video is None:
        raise ShortDecodeError(source, f"{label}: the written file has no video (nothing decoded there)")
    too_few = video.n_packets < expected.n_frames - expected.missing_frames_ok
    # at least what the source's video covers, at most the span (the reel's concat pads video to its audio)
    too_short = video.span_s < expected.video_s - expected.frame_s - 1e-3
    too_long = not expected.may_run_long and video.span_s > span_s + expected.frame_s + 1e-3
    if too_few or too_short or too_long:
        raise ShortDecodeError(source, f"{label}: decoded {video.n_packets} frames / {video.span_s:.2f} s of video, "
                                       f"the source has {expected.n_frames} frames / {expected.video_s:.2f} s there "
                                       "(damaged or truncated?)")
    if decode and video.n_decoded is not None and video.n_decoded < expected.n_frames - expected.missing_frames_ok:
        raise ShortDecodeError(source, f"{label}: decoded {video.n_decoded} frames, the source has "
                                       f"{expected.n_frames} there (damaged or truncated?)")
    if not expected.has_audio or not expected.decoded:
        return
    audio = streams.get("audio")
    audio_s = audio.total_s if audio else 0.0
    packet_s = audio.longest_packet_s if audio else 0.0
    audio_slack_s = expected.frame_s + AUDIO_PACKET_SLACK * packet_s + 1e-3
    if abs(audio_s - span_s) > audio_slack_s:
        raise ShortDecodeError(source, f"{label}: decoded {audio_s:.2f} s of audio for a {span_s:.2f}-s span "
                                       "(damaged or truncated?)")
