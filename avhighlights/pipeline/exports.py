"""Text exports of a highlights document: CSV, CMX 3600 EDL, WebVTT and ffmetadata chapters.

Chapters (VTT, ffmetadata) and the EDL's source timecodes refer to the SOURCE video's timeline; the
EDL's record timecodes lay the clips end to end in time order, like the reel. Each function returns
the file's text; the renderer writes it atomically.
"""

from __future__ import annotations

import csv
import io
import math
from fractions import Fraction
from pathlib import Path

from avhighlights.pipeline.results import ClipEntry, HighlightsDoc

CSV_COLUMNS = ("rank", "start_s", "end_s", "duration_s", "score", "path")


def csv_text(doc: HighlightsDoc) -> str:
    """One row per clip, best rank first: rank,start_s,end_s,duration_s,score,path."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for clip in sorted(doc.clips, key=lambda c: c.rank):
        writer.writerow([clip.rank, f"{clip.start_s:.3f}", f"{clip.end_s:.3f}", f"{clip.duration_s:.3f}",
                         f"{clip.score:.6g}", clip.path or ""])
    return buffer.getvalue()


def timecode_base(fps: Fraction) -> int:
    """Frames per timecode second: the rounded frame rate (23.976 -> 24, 29.97 -> 30)."""
    return max(1, round(fps))


def frame_at(time_s: float, fps: Fraction) -> int:
    """Index of the frame boundary nearest to `time_s` (halves round up): the frame a cut there starts with."""
    return math.floor(Fraction(time_s).limit_denominator(1_000_000) * fps + Fraction(1, 2))


def timecode(frame: int, base: int) -> str:
    """Non-drop-frame timecode HH:MM:SS:FF of frame number `frame` counted at `base` frames per second."""
    seconds, frames = divmod(frame, base)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}:{frames:02d}"


def edl_text(doc: HighlightsDoc, title: str | None = None) -> str:
    """CMX 3600 EDL, one video cut event per clip in time order, at the video's frame rate."""
    fps, base = doc.video.fps, timecode_base(doc.video.fps)
    source_name = Path(doc.video.path).name
    lines = [f"TITLE: {title or Path(doc.video.path).stem + ' highlights'}", "FCM: NON-DROP FRAME", ""]
    record_frame = 0
    for number, clip in enumerate(doc.clips_in_time_order(), start=1):
        src_in, src_out = frame_at(clip.start_s, fps), frame_at(clip.end_s, fps)
        rec_out = record_frame + (src_out - src_in)
        lines.append(f"{number:03d}  AX       V     C        {timecode(src_in, base)} {timecode(src_out, base)} "
                     f"{timecode(record_frame, base)} {timecode(rec_out, base)}")
        lines.append(f"* FROM CLIP NAME: {source_name}")
        lines.append(f"* COMMENT: HIGHLIGHT {clip.rank} SCORE {clip.score:.4g}")
        lines.append("")
        record_frame = rec_out
    return "\n".join(lines)


def chapter_title(clip: ClipEntry) -> str:
    return f"Highlight {clip.rank} (score {clip.score:.3g})"


def vtt_timestamp(time_s: float) -> str:
    millis = round(time_s * 1000)
    seconds, millis = divmod(millis, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def vtt_text(doc: HighlightsDoc) -> str:
    """WebVTT chapters: one cue per clip in time order, titled with its rank and score."""
    cues = ["WEBVTT", ""]
    for number, clip in enumerate(doc.clips_in_time_order(), start=1):
        cues += [str(number), f"{vtt_timestamp(clip.start_s)} --> {vtt_timestamp(clip.end_s)}", chapter_title(clip), ""]
    return "\n".join(cues)


def ffmeta_escape(value: str) -> str:
    """Escape the characters ffmetadata treats specially ('=', ';', '#', backslash, newline)."""
    for char in ("\\", "=", ";", "#", "\n"):
        value = value.replace(char, "\\" + char)
    return value


def ffmeta_text(doc: HighlightsDoc) -> str:
    """ffmetadata chapters (TIMEBASE=1/1000), ready for `ffmpeg -i video -i chapters.ffmeta -map_chapters 1`."""
    lines = [";FFMETADATA1", f"title={ffmeta_escape(Path(doc.video.path).stem + ' highlights')}", ""]
    for clip in doc.clips_in_time_order():
        lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={round(clip.start_s * 1000)}",
                  f"END={round(clip.end_s * 1000)}", f"title={ffmeta_escape(chapter_title(clip))}", ""]
    return "\n".join(lines)
