"""Smart cut: frame-accurate clips that re-encode only the frames at their cuts and copy the rest.

A clip [start, end) of an H.264 source is written as up to three parts, joined with the concat demuxer:
the head [start, k1) re-encoded, the middle [k1, k2) copied packet for packet, the tail [k2, end)
re-encoded, where k1 is the first clean keyframe at or after start and k2 the last clean keyframe (or the
video's end) at or before end. A clean keyframe (`VideoTimeline.clean_keyframe_s`) splits decode order and
presentation order, so the packets from it on are exactly the frames from its time on (open-GOP leading
pictures are excluded by construction). Parts are written as MPEG-TS, which carries each part's SPS/PPS
in-band, so the decoder switches between the encoder's and the source's parameter sets at every join; the
re-encoded parts have no B-frames and their decode times are shifted by the source's decode lead at the
adjoining keyframe, so decode times rise across every join. The clip's audio is re-encoded (AAC) from the
source in one piece over [start, end), in the same ffmpeg run that joins the video parts, so it is
continuous and starts with the video. The reel joins smart-cut clips the same way (video copied, audio
trimmed from the source once), so no frame is encoded twice.

Full re-encode instead (`fallback_reason` says why) when the copied frames could not be joined exactly:
not H.264 in MP4/MOV/MKV (VP8/VP9 webm: the clips are H.264 MP4 either way, and libvpx parts would need a
WebM/Matroska clip whose millisecond timestamps cannot time 30-fps frames exactly), not 8-bit 4:2:0, an
uncommon profile, interlaced, odd size, a rotation tag (re-encoded parts are turned upright, copied ones
are not), or no clean keyframe inside the clip.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from avhighlights.core.types import VideoInfo
from avhighlights.pipeline import children
from avhighlights.pipeline.cuts import KEEP_TIMESTAMPS, RenderError, concat_list, run_ffmpeg, split_at
from avhighlights.pipeline.encoder import AAC_ARGS, PART_QUALITY, video_encoder
from avhighlights.pipeline.ffargs import safe_media_arg
from avhighlights.pipeline.frame_times import VideoTimeline
from avhighlights.pipeline.output_dir import FFMPEG_FULL_DISK
from avhighlights.pipeline.render_checks import ShortDecodeError
from avhighlights.pipeline.synth import ffmpeg_binary

SMART_CODECS = {"h264": frozenset({"Constrained Baseline", "Baseline", "Main", "High"})}
SMART_CONTAINERS = ("mov", "mp4", "matroska")  # ffprobe format names that hold H.264 as length-prefixed NAL units
# a copy seeks this far (plus the keyframe's decode lead) before its keyframe: MP4 seeks by raw decode time, so
# on VFR input a seek just past a keyframe can land a GOP early or late; landing early only costs reading packets
COPY_PREROLL_S = 0.5
COPY_START_SLACK_S = 1e-3  # the output -ss sits this far before the keyframe (frames are > 1 ms apart)
TIME_EPS_S = 1e-4  # clip bounds are frame-snapped; keyframe times are printed to 1 us
INPUT_MARGIN_S = 0.5  # a re-encoded part's input reads this far past the part (-frames:v ends it exactly)
PART_TICKS_PER_S = 90_000  # parts are MPEG-TS: 90-kHz timestamps (exact for 24/25/30/29.97/50/60 fps)


class PartMismatchError(RuntimeError):
    """A re-encoded part did not come out with the decode times the join needs (the clip is re-encoded in full)."""


@dataclass(frozen=True)
class Part:
    """One piece of a smart-cut clip: frames [start_s, end_s) of the source, copied or re-encoded; `lead_s`
    is the source's decode lead at the copied keyframe this part adjoins (the shift of its decode times)."""

    start_s: float
    end_s: float
    n_frames: int
    copy: bool
    lead_s: float


def fallback_reason(info: VideoInfo, timeline: VideoTimeline) -> str | None:
    """Why clips of `info` cannot be smart-cut (None when they can)."""
    if info.rotation_deg % 360:
        return f"the video is rotated {info.rotation_deg} degrees"
    stream = _video_stream(info.path)
    codec, profile = stream.get("codec_name", ""), stream.get("profile", "")
    checks = {
        f"{codec or 'unknown'} video (smart cut handles {sorted(SMART_CODECS)})": codec not in SMART_CODECS,
        f"{stream.get('format_name', '?')} container": not any(c in stream.get("format_name", "").split(",")
                                                               for c in SMART_CONTAINERS),
        f"profile {profile!r}": codec in SMART_CODECS and profile not in SMART_CODECS[codec],
        f"pixel format {stream.get('pix_fmt')}": stream.get("pix_fmt") != "yuv420p",
        f"{stream.get('field_order')} (interlaced) video": stream.get("field_order", "progressive") not in (
            "progressive", "unknown"),
        f"odd size {stream.get('width')}x{stream.get('height')}": int(stream.get("width", 1)) % 2 == 1 or int(
            stream.get("height", 1)) % 2 == 1,
        "no clean (closed-GOP) keyframe": timeline.clean_keyframe_s.size == 0,
    }
    return next((reason for reason, failed in checks.items() if failed), None)


def _video_stream(path: Path) -> dict:
    entries = "stream=codec_name,profile,pix_fmt,field_order,width,height:format=format_name"
    cmd = ["ffprobe", "-v", "error", "-select_streams", "V:0", "-show_entries", entries, "-of", "json",
           safe_media_arg(path)]
    result = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    data = json.loads(result.stdout or "{}") if result.returncode == 0 else {}
    streams = data.get("streams") or [{}]
    return {**streams[0], "format_name": data.get("format", {}).get("format_name", "")}


def plan_parts(start_s: float, end_s: float, timeline: VideoTimeline) -> list[Part] | None:
    """The parts of the frame-snapped clip [start_s, end_s); None when no keyframe lets any of it be copied."""
    keys, leads = timeline.clean_keyframe_s, timeline.clean_lead_s
    inside = [i for i, k in enumerate(keys) if start_s - TIME_EPS_S <= k <= end_s + TIME_EPS_S]
    if not inside:
        return None
    first = inside[0]
    at_video_end = end_s >= timeline.duration_s - TIME_EPS_S
    last = None if at_video_end else inside[-1]  # the copy runs to the video's end when the clip does
    k1 = float(keys[first])
    k2 = end_s if last is None else float(keys[last])
    if k2 - k1 <= TIME_EPS_S:
        return None
    parts = []
    if k1 - start_s > TIME_EPS_S:
        parts.append(Part(start_s, k1, timeline.frames_in(start_s, k1), False, float(leads[first])))
    parts.append(Part(k1, k2, timeline.frames_in(k1, k2), True, float(leads[first])))
    if last is not None and end_s - k2 > TIME_EPS_S:
        parts.append(Part(k2, end_s, timeline.frames_in(k2, end_s), False, float(leads[last])))
    return parts


def parts_or_whole(start_s: float, end_s: float, timeline: VideoTimeline) -> list[Part]:
    """`plan_parts`, or one re-encoded part when nothing can be copied (written the same way, so it carries its
    parameter sets in-band and the reel can join it with the other clips; its decode times get the source's
    largest decode lead, so they rise across a join with a clip whose first frames were copied)."""
    lead_s = float(timeline.clean_lead_s.max()) if timeline.clean_lead_s.size else 0.0
    return plan_parts(start_s, end_s, timeline) or [Part(start_s, end_s, timeline.frames_in(start_s, end_s), False,
                                                          lead_s)]


def copy_part_command(info: VideoInfo, part: Part, path: Path) -> list[str]:
    """ffmpeg arguments that write the copied `part` as video-only MPEG-TS to `path`: seek to some keyframe before
    it; the output -ss (source times: -copyts) then drops every packet before its keyframe (stream copy starts on
    the first keyframe whose decode time is at or after it)."""
    seek_s = max(0.0, part.start_s - part.lead_s - COPY_PREROLL_S)
    first_dts_s = part.start_s - part.lead_s - COPY_START_SLACK_S
    return [*_base_command(), "-ss", f"{seek_s:.6f}", "-copyts", "-i", safe_media_arg(info.path), "-map", "0:v:0",
            "-c:v", "copy", "-ss", f"{first_dts_s:.6f}", "-frames:v", str(part.n_frames), "-f", "mpegts",
            safe_media_arg(path)]


def encode_parts_command(info: VideoInfo, parts_and_paths: list[tuple[Part, Path]], threads: int = 0) -> list[str]:
    """ffmpeg arguments that re-encode every part in `parts_and_paths` in one run (one input, seeked to its part,
    and one video-only MPEG-TS output per part; a clip's head and tail cost one process, not two)."""
    inputs, outputs = [], []
    for i, (part, path) in enumerate(parts_and_paths):
        # the input -t matters: with several inputs ffmpeg 5.1 goes on decoding an input whose output is done
        # (measured: head + tail of a clip of a 10-min file, 12 CPU s instead of 0.3)
        read_s = f"{part.end_s - part.start_s + INPUT_MARGIN_S:.6f}"
        inputs += [*_decoder_threads(threads), "-ss", f"{part.start_s:.6f}", "-t", read_s, "-i",
                   safe_media_arg(info.path)]
        # in 90-kHz ticks: setts' TB constant is the encoder's time base in ffmpeg 5.1, not the packets' (checked
        # after, see _check_decode_lead)
        shift = f"setts=dts=PTS-{round(part.lead_s * PART_TICKS_PER_S)}"
        outputs += ["-map", f"{i}:v:0", "-frames:v", str(part.n_frames), *KEEP_TIMESTAMPS,
                    *video_encoder().args(PART_QUALITY, b_frames=False, threads=threads), "-bsf:v", shift,
                    "-f", "mpegts", safe_media_arg(path)]
    return [*_base_command(), *inputs, *outputs]


def _base_command() -> list[str]:
    return [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]


def _decoder_threads(threads: int) -> list[str]:
    return ["-threads", str(threads)] if threads else []


def concat_list_timed(paths_and_durations: list[tuple[Path, float]]) -> str:
    """A concat-demuxer list that gives each file its exact duration (the next file starts there)."""
    return "".join(concat_list([path]) + f"duration {duration_s:.6f}\n" for path, duration_s in paths_and_durations)


def join_command(info: VideoInfo, list_file: Path, start_s: float, end_s: float) -> list[str]:
    """ffmpeg arguments that join the video parts in `list_file` with the source's audio of [start_s, end_s)."""
    duration = f"{end_s - start_s:.6f}"
    audio_in = ["-ss", f"{start_s:.6f}", "-t", duration, "-i", safe_media_arg(info.path)] if info.has_audio else []
    return [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "concat", "-safe", "0",
            "-i", safe_media_arg(list_file), *audio_in, "-map", "0:v:0", *(["-map", "1:a:0"] if info.has_audio else []),
            "-c:v", "copy", *(AAC_ARGS if info.has_audio else ()), "-t", duration, "-movflags", "+faststart"]


def write_clip(info: VideoInfo, parts: list[Part], target: Path, work_dir: Path, threads: int = 0) -> Path:
    """Write the clip made of `parts` to `target` (through a temp file); `work_dir` holds the parts meanwhile.
    At most three processes: the re-encoded parts together, the copied part, the join; `threads` (0: ffmpeg's
    choice) bounds each one's threads when several clips are written at once."""
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        paths = [work_dir / f"part{i}.ts" for i in range(len(parts))]
        encoded = [(part, path) for part, path in zip(parts, paths, strict=True) if not part.copy]
        if encoded:
            _write_parts(info, encode_parts_command(info, encoded, threads), encoded, target)
        for part, path in zip(parts, paths, strict=True):
            if part.copy:
                _write_parts(info, copy_part_command(info, part, path), [(part, path)], target)
        for part, path in encoded:
            _check_decode_lead(path, part)
        list_file = work_dir / "parts.concat"
        list_file.write_text(concat_list_timed([(path, part.end_s - part.start_s)
                                                for part, path in zip(parts, paths, strict=True)]))
        return run_ffmpeg(join_command(info, list_file, parts[0].start_s, parts[-1].end_s), target, info.path)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def _write_parts(info: VideoInfo, args: list[str], parts_and_paths: list[tuple[Part, Path]], target: Path) -> None:
    """Run `args` (which write the parts); a source range that cannot be read fails like a short decode, naming
    the clip and the parts."""
    result = children.run(args)
    # a part of no frames (a clip bound between two frame starts) may come out empty; its decode-lead check
    # then sends the clip to a full re-encode
    empty = [part for part, path in parts_and_paths
             if part.n_frames > 0 and (not path.is_file() or path.stat().st_size == 0)]
    if result.returncode != 0 or empty:
        tail = " | ".join(result.stderr.strip().splitlines()[-3:]) or f"exit status {result.returncode}"
        if any(text in result.stderr for text in FFMPEG_FULL_DISK):  # the output, not the source: exit 8
            raise RenderError(info.path, f"ffmpeg could not write {target.name}: {tail}")
        where = ", ".join(f"[{p.start_s:.2f}, {p.end_s:.2f})" for p in (empty or [p for p, _ in parts_and_paths]))
        raise ShortDecodeError(info.path, f"{target.name} {where}: decoded nothing there, the source cannot be read "
                                          f"(ffmpeg could not write the part: {tail})")


def _check_decode_lead(path: Path, part: Part) -> None:
    """The first packet of a re-encoded part must decode `part.lead_s` before it shows (as the copied frames do);
    read in-process (PyAV demuxes the first packet), so the check costs no process."""
    import av  # imported here: only smart cut reads packets in-process

    try:
        with av.open(safe_media_arg(path)) as container:
            packet = next(container.demux(container.streams.video[0]))
            lead_s = float((packet.pts - packet.dts) * packet.time_base)
    except (av.FFmpegError, StopIteration, IndexError, TypeError):
        lead_s = float("nan")
    if not abs(lead_s - part.lead_s) < 1.5 / PART_TICKS_PER_S:
        raise PartMismatchError(f"{path.name}: decode lead {lead_s} s, the copied frames need {part.lead_s} s")


def reel_audio_graph(spans_s: list[tuple[float, float]]) -> str:
    """filter_complex that cuts the source's audio to every span (sorted, not overlapping) and concatenates them
    (output [ac]); one pass over the audio (`cuts.split_at`)."""
    n = len(spans_s)
    parts = split_at("[1:a:0]", spans_s, audio=True, prefix="a")
    parts.append("".join(f"[a{i}]" for i in range(n)) + f"concat=n={n}:v=0:a=1[ac]")
    return ";\n".join(parts)


def reel_join_command(info: VideoInfo, list_file: Path, audio_graph_file: Path | None) -> list[str]:
    """ffmpeg arguments that join smart-cut clips (video copied) and trim the reel's audio from the source."""
    cmd = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "concat", "-safe", "0",
           "-i", safe_media_arg(list_file)]
    if audio_graph_file is None:
        return [*cmd, "-map", "0:v:0", "-c:v", "copy", "-movflags", "+faststart"]
    return [*cmd, "-vn", "-i", safe_media_arg(info.path), "-filter_complex_script", safe_media_arg(audio_graph_file),
            "-map", "0:v:0", "-map", "[ac]", "-c:v", "copy", *AAC_ARGS, "-movflags", "+faststart"]
