"""Editor exports of a highlights document through OpenTimelineIO and its adapters.

One timeline (`pipeline/timeline.py`) is written as `.otio` (OTIO JSON), FCPXML (`fcpx_xml` adapter:
Final Cut Pro, DaVinci Resolve), FCP7 XML (`fcp_xml` adapter: Premiere, Resolve, Avid; its picture and
sound clip items are then linked) and a CMX 3600 EDL (`cmx_3600` adapter). Each function returns the
file's text; the renderer writes it atomically.

EDL: the adapter writes the events of the video track only, so events carry the audio in their
channel field, as editors' own EDLs do for linked picture and sound: `AA/V` (V, A1, A2) for a stereo
or multichannel source, `B` (V, A1) for mono, `V` without audio. It names no frame-count mode, so the
`FCM:` line is added; it lays the record side from 00:00:00:00, so the events are placed after a
leading gap as long as the programme start (01:00:00:00), which is what the adapter writes as the
first record timecode. FCPXML: the adapter writes no sequence start timecode (the record side would
start at 0; it is set to the programme start, see `start_sequence_at`), knows only nominal rates (the
exact rate in use is registered with it) and places the connected sound clips at a whole-number rate
(they are re-anchored, see `anchor_connected_clips`).
"""

from __future__ import annotations

import re
from fractions import Fraction
from xml.etree import ElementTree

import opentimelineio as otio

from avhighlights.pipeline.results import HighlightsDoc
from avhighlights.pipeline.timeline import build_timeline, edit_rate, is_drop_frame

EVENT_CHANNEL = re.compile(r"^(\d{3}  \S+ +)V    ( C )", re.MULTILINE)


def otio_text(doc: HighlightsDoc) -> str:
    return otio.adapters.write_to_string(build_timeline(doc), "otio_json")


def fcp7_text(doc: HighlightsDoc) -> str:
    return link_clip_items(otio.adapters.write_to_string(build_timeline(doc), "fcp_xml"))


def link_clip_items(xml_text: str) -> str:
    """FCP7 XML with the n-th clip item of every track linked to the n-th of the others (`<link>`, as Premiere
    writes for picture and its sound); the adapter writes none, so sound would import unlinked."""
    root = ElementTree.fromstring(xml_text)
    for media in root.iter("media"):
        tracks = [(kind, index, track.findall("clipitem")) for kind in ("video", "audio")
                  for index, track in enumerate(media.findall(f"{kind}/track"), start=1)]
        for clip_index in range(1, 1 + min((len(items) for *_, items in tracks), default=0)):
            group = [(kind, index, items[clip_index - 1]) for kind, index, items in tracks]
            for *_, item in group:
                for kind, index, other in group:
                    link = ElementTree.SubElement(item, "link")
                    for tag, text in (("linkclipref", other.get("id")), ("mediatype", kind),
                                      ("trackindex", str(index)), ("clipindex", str(clip_index))):
                        ElementTree.SubElement(link, tag).text = text
    ElementTree.indent(root, space="    ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE xmeml>\n' + ElementTree.tostring(root, "unicode") + "\n"


def fcpxml_text(doc: HighlightsDoc) -> str:
    rate = edit_rate(doc.video.fps)
    adapter_module = otio.adapters.from_name("fcpx_xml").module()  # the instance the plug-in system loaded
    adapter_module.FRAMERATE_FRAMEDURATION.setdefault(float(rate), f"{rate.denominator}/{rate.numerator}s")
    timeline = build_timeline(doc)
    for clip in timeline.find_clips():  # the adapter looks clips up by name in an XPath quoted with '
        clip.name = clip.name.replace("'", "\u2019")
        clip.media_reference.name = clip.media_reference.name.replace("'", "\u2019")
    root = ElementTree.fromstring(otio.adapters.write_to_string(timeline, "fcpx_xml"))
    anchor_connected_clips(root)
    start_sequence_at(root, int(timeline.global_start_time.value), rate)
    ElementTree.indent(root, space="    ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE fcpxml>\n' + ElementTree.tostring(root, "unicode") + "\n"


def anchor_connected_clips(root: ElementTree.Element) -> None:
    """Anchor every connected (lane) clip of the FCPXML at its parent's first frame: its offset, in the
    parent's timeline, is the parent's `start`. The adapter computes it at a whole-number rate (29 for
    29.97), which puts the sound up to a frame off at NTSC rates; at other rates it is already this."""
    for parent in root.iter("clip"):
        for connected in parent.findall("clip[@lane]"):
            connected.set("offset", parent.get("start", "0s"))


def start_sequence_at(root: ElementTree.Element, start_frames: int, rate: Fraction) -> None:
    """Start every FCPXML sequence's record side at frame `start_frames` of `rate` (the programme start,
    01:00:00:00): `tcStart` and `tcFormat` (DF at 29.97 and 59.94) on the sequence, and each spine
    item's `offset`, which counts in sequence time and so begins at `tcStart`, moved by as much."""
    frame_s = 1 / rate
    start_s = start_frames * frame_s
    for sequence in root.iter("sequence"):
        sequence.set("tcStart", fcpxml_time(start_s, frame_s))
        sequence.set("tcFormat", "DF" if is_drop_frame(float(rate)) else "NDF")
        for item in sequence.findall("spine/*"):
            item.set("offset", fcpxml_time(start_s + fcpxml_seconds(item.get("offset", "0s")), frame_s))


def fcpxml_seconds(value: str) -> Fraction:
    """An FCPXML time ("3600s", "27/25s", "1001/30000s") in seconds."""
    return Fraction(value.removesuffix("s"))


def fcpxml_time(seconds: Fraction, frame_s: Fraction) -> str:
    """`seconds` as FCPXML writes it: whole seconds as "3600s", else a whole number of frame durations
    ("90027/25s", at 29.97 "107999892/30000s"); a time off the frame grid as its reduced fraction."""
    if seconds.denominator == 1:
        return f"{seconds.numerator}s"
    frames = seconds / frame_s
    if frames.denominator != 1:
        return f"{seconds.numerator}/{seconds.denominator}s"
    return f"{frames.numerator * frame_s.numerator}/{frame_s.denominator}s"


def audio_channels_field(doc: HighlightsDoc) -> str:
    """The EDL channel field of an event with picture and, when the source has any, its sound."""
    if not doc.video.has_audio:
        return "V"
    return "B" if doc.video.audio_channels == 1 else "AA/V"


def edl_text(doc: HighlightsDoc) -> str:
    """CMX 3600 EDL: one cut event per clip in reel order, picture with its linked sound (see above)."""
    timeline = build_timeline(doc)
    rate = timeline.global_start_time.rate
    header = [f"TITLE: {timeline.name}", f"FCM: {'DROP FRAME' if is_drop_frame(rate) else 'NON-DROP FRAME'}", ""]
    video = timeline.video_tracks()[0]
    if len(video) == 0:
        return "\n".join(header) + "\n"
    video.insert(0, otio.schema.Gap(duration=timeline.global_start_time))  # the adapter writes this track only
    body = otio.adapters.write_to_string(timeline, "cmx_3600", rate=rate, style="avid")
    events = body.split("\n\n", 1)[1]  # after the adapter's own TITLE line
    channel = audio_channels_field(doc)
    return "\n".join(header) + "\n" + EVENT_CHANNEL.sub(lambda m: f"{m.group(1)}{channel:5}{m.group(2)}", events)
