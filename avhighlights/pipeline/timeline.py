"""One OpenTimelineIO timeline of a highlights document, the source of every editor export.

The selected clips lie end to end in reel (time) order on a video track and, when the source has
audio, on a linked audio track holding the same source ranges. Every clip references the source file
(`ExternalReference`: absolute file URL, the source's available range). Source times count from the
source's own timecode (the `timecode` tag ffprobe reports, `VideoInfo.start_timecode`; 00:00:00:00
without one), so a file tagged 01:00:00:00 conforms; the record side starts at 01:00:00:00, the usual
programme start. Times are whole frames at the edit rate: the source frame rate when it is a timecode
rate, else one that is a whole multiple of it (`edit_rate`: 15 -> 30); 29.97 and 59.94 count
drop-frame (OTIO infers it from the rate). Cut
points are the frame boundaries the clip renderer snaps to (`exports.frame_at`). Rank and score are
a marker at each video clip's first frame and clip metadata under "avhighlights".
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from avhighlights.core.types import VideoInfo
from avhighlights.pipeline.exports import frame_at
from avhighlights.pipeline.results import ClipEntry, HighlightsDoc
from avhighlights.pipeline.safe_text import one_line

RationalTime, TimeRange = otio.opentime.RationalTime, otio.opentime.TimeRange
RECORD_START = "01:00:00:00"
METADATA_KEY = "avhighlights"
MARKER_COLOR = otio.schema.MarkerColor.GREEN
SMPTE_RATES = tuple(Fraction(r) for r in ("24000/1001", "24", "25", "30000/1001", "30", "48", "50", "60000/1001", "60"))


def edit_rate(fps: Fraction) -> Fraction:
    """The timeline's frame rate: `fps` when it is a SMPTE timecode rate (24, 25, 30000/1001, ...), else the
    smallest such rate that is (nearest to) a whole multiple of it: 15 -> 30, 12.5 -> 25, 14.985 -> 29.97,
    and 60 for anything faster (120 fps loses every other frame boundary)."""
    if RationalTime.is_valid_timecode_rate(float(fps)):
        return fps

    def off_multiple(rate: Fraction) -> float:
        ratio = float(rate / fps)
        return abs(ratio - max(1, round(ratio)))

    return min(SMPTE_RATES, key=off_multiple)


def is_drop_frame(rate: float) -> bool:
    """Whether OTIO writes timecode at `rate` drop-frame (29.97, 59.94)."""
    return ";" in RationalTime(0, rate).to_timecode(rate)


def timecode_frames(timecode: str, rate: float) -> RationalTime:
    """The frame a timecode names at `rate`; a drop-frame separator is ignored at rates without drop-frame."""
    text = timecode.replace(".", ";").replace(",", ";")
    try:
        return otio.opentime.from_timecode(text, rate)
    except ValueError:
        return otio.opentime.from_timecode(text.replace(";", ":"), rate)


def source_start(info: VideoInfo, rate: float) -> RationalTime:
    """The source's first frame on its own timecode (00:00:00:00 when untagged or unreadable)."""
    if info.start_timecode:
        try:
            return timecode_frames(info.start_timecode, rate)
        except ValueError:
            pass
    return RationalTime(0, rate)


def record_start(rate: float) -> RationalTime:
    """01:00:00:00 (01:00:00;00 at drop-frame rates)."""
    return timecode_frames(RECORD_START[:-3] + (";" if is_drop_frame(rate) else ":") + "00", rate)


def build_timeline(doc: HighlightsDoc) -> otio.schema.Timeline:
    """The timeline of `doc`'s clips in reel order (see the module docstring)."""
    info, rate_fraction = doc.video, edit_rate(doc.video.fps)
    rate = float(rate_fraction)
    timeline = otio.schema.Timeline(name=one_line(Path(info.path).stem + " highlights"),
                                    global_start_time=record_start(rate))
    display = {"fcp_xml": {"timecode": {"displayformat": "DF" if is_drop_frame(rate) else "NDF"}}}
    timeline.metadata.update({**display, METADATA_KEY: {"source": str(info.path), "method": doc.method,
                                                        "checkpoint": doc.checkpoint}})
    kinds = [otio.schema.TrackKind.Video] + ([otio.schema.TrackKind.Audio] if info.has_audio else [])
    for number, kind in enumerate(kinds, start=1):
        track = otio.schema.Track(name=f"{kind[0]}1", kind=kind)
        for clip in doc.clips_in_time_order():
            track.append(_clip(info, clip, rate_fraction, with_marker=number == 1, display=display))
        timeline.tracks.append(track)
    return timeline


def _clip(info: VideoInfo, clip: ClipEntry, rate_fraction: Fraction, with_marker: bool,
          display: dict) -> otio.schema.Clip:
    rate, start = float(rate_fraction), source_start(info, float(rate_fraction))
    first, end = frame_at(clip.start_s, rate_fraction), frame_at(clip.end_s, rate_fraction)
    source_range = TimeRange(start + RationalTime(first, rate), RationalTime(max(1, end - first), rate))
    reference = otio.schema.ExternalReference(
        target_url=Path(info.path).absolute().as_uri(),  # make_doc resolved it; absolute() takes any name
        available_range=TimeRange(start, RationalTime(frame_at(info.duration_s, rate_fraction), rate)),
        metadata=display)
    reference.name = one_line(Path(info.path).name)
    facts = {"rank": clip.rank, "score": clip.score, "start_s": clip.start_s, "end_s": clip.end_s}
    result = otio.schema.Clip(name=reference.name, media_reference=reference, source_range=source_range,
                              metadata={METADATA_KEY: facts, "cmx_3600": {"reel": reel_name(info)}})
    if with_marker:
        result.markers.append(otio.schema.Marker(
            name=f"Highlight {clip.rank} score {clip.score:.3g}", color=MARKER_COLOR,
            marked_range=TimeRange(source_range.start_time, RationalTime(0, rate)), metadata={METADATA_KEY: facts}))
    return result


def reel_name(info: VideoInfo) -> str:
    """The EDL reel: the file stem's letters and digits, at most 8 (CMX 3600), or AX (auxiliary source)."""
    letters = "".join(c for c in Path(info.path).stem if c.isascii() and c.isalnum())
    return letters[:8] or "AX"
