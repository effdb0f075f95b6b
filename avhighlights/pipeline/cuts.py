"""ffmpeg commands that cut clips and build the reel; every output goes through a temp file + rename.

Re-encoded clips seek accurately (`-ss` before `-i` with re-encoding decodes from the previous
keyframe and drops the frames before the start), so a clip holds exactly the frames whose
timestamps fall in [start, end). On constant-frame-rate input, start and end are first snapped to
the nearest frame boundary, which makes the video and audio of every clip exactly equally long.
ffmpeg's autorotation turns rotated (e.g. portrait phone) input upright while re-encoding, so
clips keep the displayed orientation; stream copy keeps the rotation tag instead.

Re-encoded outputs keep the source's frame timestamps (`-fps_mode passthrough`): on variable-frame-
rate input no frame is dropped or duplicated to fit a nominal rate, so a clip holds exactly the
source's frames of its span, and a range that does not decode shows up as missing frames (which
`render_checks` catches) instead of being papered over with duplicates. With a `VideoTimeline` (the
real frame times), VFR spans snap to real frames and the reel trims half-way between real frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from avhighlights.core.atomic import atomic_path
from avhighlights.core.errors import MediaError
from avhighlights.core.types import VideoInfo
from avhighlights.pipeline import children
from avhighlights.pipeline.encoder import AAC_ARGS, CLIP_QUALITY, video_encoder
from avhighlights.pipeline.exports import frame_at
from avhighlights.pipeline.ffargs import safe_media_arg
from avhighlights.pipeline.frame_times import VideoTimeline
from avhighlights.pipeline.synth import ffmpeg_binary

EVEN_SIZE = r"scale=max(2\,trunc(iw/2)*2):max(2\,trunc(ih/2)*2)"  # yuv420p: even sizes (odd input loses <= 1 px)
MP4_VIDEO_CODECS = frozenset({"h264", "hevc", "av1", "mpeg4", "vp9"})
MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"})
MUXER_OF_SUFFIX = {".mp4": "mp4", ".mkv": "matroska", ".ts": "mpegts"}
KEEP_TIMESTAMPS = ("-fps_mode", "passthrough")
SPLIT_EPS_S = 1e-6  # a span starting this close after the previous one ends adjoins it (no gap between them)


class RenderError(MediaError):
    """ffmpeg failed to write an output; carries the input path and the tail of ffmpeg's message."""


def snap_s(time_s: float, info: VideoInfo) -> float:
    """`time_s` moved to the nearest frame boundary (constant frame rate only; VFR is left as is)."""
    if info.variable_frame_rate or info.fps <= 0:
        return float(time_s)
    return float(frame_at(time_s, info.fps) / info.fps)


def snapped_span(start_s: float, end_s: float, info: VideoInfo,
                 timeline: VideoTimeline | None = None) -> tuple[float, float]:
    """Frame-snapped [start, end) that keeps at least one frame and stays inside the video (VFR input
    snaps to the real frames of `timeline` when given)."""
    if info.variable_frame_rate and timeline is not None:
        start, end = timeline.nearest_frame_s(start_s), min(timeline.nearest_frame_s(end_s), info.duration_s)
        if end <= start:
            end = min(start + max(timeline.longest_frame_s(start, start), float(1 / info.fps)), info.duration_s)
        return start, end
    start, end = snap_s(start_s, info), min(snap_s(end_s, info), info.duration_s)
    if end <= start:
        end = min(start + float(1 / info.fps), info.duration_s)
    return start, end


def stream_copy_suffix(info: VideoInfo) -> str:
    """`.mp4` when the source's codecs fit in MP4 without re-encoding, otherwise `.mkv`."""
    audio_ok = not info.has_audio or (info.audio_codec or "") in MP4_AUDIO_CODECS
    return ".mp4" if info.video_codec in MP4_VIDEO_CODECS and audio_ok else ".mkv"


def _base_command() -> list[str]:
    return [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]


def _stream_maps(info: VideoInfo) -> list[str]:
    return ["-map", "0:v:0", *(["-map", "0:a:0"] if info.has_audio else [])]


def clip_command(info: VideoInfo, start_s: float, end_s: float, *, stream_copy: bool, threads: int = 0) -> list[str]:
    """ffmpeg arguments (without the output path) for one clip of `info` covering [start_s, end_s); `threads`
    (0: ffmpeg's choice) bounds the decoder's, filters' and encoder's threads when several clips run at once."""
    threads_args = ["-filter_threads", str(threads), "-threads", str(threads)] if threads else []
    cmd = [*_base_command(), *threads_args, "-ss", f"{start_s:.6f}", "-i", safe_media_arg(info.path),
           "-t", f"{end_s - start_s:.6f}", *_stream_maps(info)]
    if stream_copy:
        return [*cmd, "-c", "copy", "-avoid_negative_ts", "make_zero"]
    return [*cmd, "-vf", EVEN_SIZE, *KEEP_TIMESTAMPS, *video_encoder().args(CLIP_QUALITY, threads=threads),
            *(AAC_ARGS if info.has_audio else ()),
            "-movflags", "+faststart"]


def split_at(stream: str, spans_s: Sequence[tuple[float, float]], *, audio: bool, prefix: str) -> list[str]:
    """Filters that cut `stream` into `spans_s` (sorted, not overlapping; seconds of the stream's own timestamps)
    with ONE segment/asegment filter, outputs `[{prefix}0]`.. in span order, each starting at 0. Every frame goes
    to exactly one output, so the cost is one pass over the stream whatever the span count (a split into one trim
    per span handed every frame to every span: the 706 spans of a 60-min source, 706 passes). A frame (audio: a
    sample) goes to the span whose [start, end) holds its timestamp, as trim/atrim would cut it."""
    points: list[float] = []
    kept: list[bool] = []  # kept[i]: output i (from points[i-1] to points[i]) is a span
    position_s = 0.0
    for start_s, end_s in spans_s:
        if start_s > position_s + SPLIT_EPS_S:
            points.append(start_s)
            kept.append(False)
        points.append(end_s)
        kept.append(True)
        position_s = end_s
    kept.append(False)  # after the last span
    segment, null, setpts = ("asegment", "anullsink", "asetpts") if audio else ("segment", "nullsink", "setpts")
    labels = [f"{prefix}seg{i}" for i in range(len(kept))]
    cut_at = "|".join(f"{point_s:.6f}" for point_s in points)
    lines = [f"{stream}{segment}=timestamps={cut_at}" + "".join(f"[{label}]" for label in labels)]
    spans = iter(range(len(spans_s)))
    lines += [f"[{label}]{setpts}=PTS-STARTPTS[{prefix}{next(spans)}]" if keep else f"[{label}]{null}"
              for label, keep in zip(labels, kept, strict=True)]
    return lines


def reel_graph(info: VideoInfo, spans_s: Sequence[tuple[float, float]],
               timeline: VideoTimeline | None = None) -> str:
    """filter_complex that cuts every span (sorted, not overlapping) out of the source and concatenates them.

    Video is cut half a frame early on both sides (half-way between the real frames when `timeline` is
    given) so frame-boundary spans select exactly the frames in [start, end); audio is cut at the exact
    span, so both streams stay in sync.
    """
    n, half_frame_s = len(spans_s), float(1 / info.fps) / 2
    video_spans = [timeline.trim_bounds_s(start, end) if timeline else (max(0.0, start - half_frame_s),
                                                                          end - half_frame_s)
                   for start, end in spans_s]
    parts = split_at("[0:v:0]", video_spans, audio=False, prefix="v")
    if info.has_audio:
        parts += split_at("[0:a:0]", spans_s, audio=True, prefix="a")
    streams = "".join(f"[v{i}]" + (f"[a{i}]" if info.has_audio else "") for i in range(n))
    concat_out = "[vc][ac]" if info.has_audio else "[vc]"
    parts.append(f"{streams}concat=n={n}:v=1:a={int(info.has_audio)}{concat_out}")
    parts.append(f"[vc]{EVEN_SIZE}[vout]")
    return ";\n".join(parts)


def reel_command(info: VideoInfo, graph_file: Path) -> list[str]:
    """ffmpeg arguments (without the output path) that render the reel described by `graph_file`."""
    maps = ["-map", "[vout]", *(["-map", "[ac]"] if info.has_audio else [])]
    return [*_base_command(), "-i", safe_media_arg(info.path), "-filter_complex_script", safe_media_arg(graph_file),
            *maps, *KEEP_TIMESTAMPS, *video_encoder().args(CLIP_QUALITY), *(AAC_ARGS if info.has_audio else ()),
            "-movflags", "+faststart"]


def concat_copy_command(list_file: Path) -> list[str]:
    """ffmpeg arguments that join stream-copied clips listed in a concat-demuxer file."""
    return [*_base_command(), "-f", "concat", "-safe", "0", "-i", safe_media_arg(list_file), "-map", "0", "-c", "copy"]


def concat_list(paths: Sequence[Path]) -> str:
    """A concat-demuxer list; single quotes in names are escaped as the demuxer expects."""
    return "".join("file '" + str(p.resolve()).replace("'", "'\\''") + "'\n" for p in paths)


def run_ffmpeg(args: list[str], target: Path, source: Path) -> Path:
    """Run ffmpeg writing to a temp file next to `target`, renamed onto it only on success."""
    with atomic_path(target) as tmp:
        result = children.run([*args, "-f", MUXER_OF_SUFFIX[target.suffix], safe_media_arg(tmp)])
        if result.returncode != 0:
            tail = " | ".join(result.stderr.strip().splitlines()[-3:]) or f"exit status {result.returncode}"
            raise RenderError(source, f"ffmpeg could not write {target.name}: {tail}")
    return target
