"""Text exports of a highlights document: CSV, WebVTT and ffmetadata chapters (the editor exports,
EDL included, go through OpenTimelineIO: `pipeline/exports_otio.py`).

Chapters (VTT, ffmetadata) refer to the SOURCE video's timeline. Text from outside (file names, paths
in a hand-edited highlights.json) has its control characters escaped (`safe_text.one_line`), so a
newline in a name cannot start a forged row, cue or key. Each function returns the file's text; the
renderer writes it atomically.
"""

from __future__ import annotations

import csv
import io
import math
from fractions import Fraction
from pathlib import Path

from avhighlights.pipeline.results import ClipEntry, HighlightsDoc
from avhighlights.pipeline.safe_text import one_line

CSV_COLUMNS = ("rank", "start_s", "end_s", "duration_s", "score", "path")


def csv_text(doc: HighlightsDoc) -> str:
    """One row per clip, best rank first: rank,start_s,end_s,duration_s,score,path."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for clip in sorted(doc.clips, key=lambda c: c.rank):
        writer.writerow([clip.rank, f"{clip.start_s:.3f}", f"{clip.end_s:.3f}", f"{clip.duration_s:.3f}",
                         f"{clip.score:.6g}", one_line(clip.path or "")])
    return buffer.getvalue()


def frame_at(time_s: float, fps: Fraction) -> int:
    """Index of the frame boundary nearest to `time_s` (halves round up): the frame a cut there starts with."""
    return math.floor(Fraction(time_s).limit_denominator(1_000_000) * fps + Fraction(1, 2))


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
    """Escape the characters ffmetadata treats specially ('=', ';', '#', backslash, newline); other control
    characters are escaped by `one_line` before."""
    for char in ("\\", "=", ";", "#", "\n"):
        value = value.replace(char, "\\" + char)
    return value


def ffmeta_text(doc: HighlightsDoc) -> str:
    """ffmetadata chapters (TIMEBASE=1/1000), ready for `ffmpeg -i video -i chapters.ffmeta -map_chapters 1`."""
    lines = [";FFMETADATA1", f"title={ffmeta_escape(one_line(Path(doc.video.path).stem) + ' highlights')}", ""]
    for clip in doc.clips_in_time_order():
        lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={round(clip.start_s * 1000)}",
                  f"END={round(clip.end_s * 1000)}", f"title={ffmeta_escape(chapter_title(clip))}", ""]
    return "\n".join(lines)
