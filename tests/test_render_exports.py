"""EDL, WebVTT, ffmetadata and CSV exports for hand-made documents (timecodes worked out by hand), and
control characters in names (issue #16 case 9: a newline in a file name forged an EDL event)."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio

from avhighlights.core.types import ScoreCurve, VideoInfo
from avhighlights.pipeline import exports, exports_otio
from avhighlights.pipeline.results import ClipEntry, HighlightsDoc
from avhighlights.pipeline.select import SelectionConfig


def doc_at(fps: Fraction, clips: list[ClipEntry], duration_s: float = 4000.0) -> HighlightsDoc:
    info = VideoInfo(path=Path("/videos/final cut.mov"), sha256="0" * 64, duration_s=duration_s, fps=fps,
                     variable_frame_rate=False, width=1920, height=1080, rotation_deg=0, video_codec="h264",
                     has_audio=True)
    curve = ScoreCurve(np.zeros(0), np.zeros(0), np.zeros(0), "hand")
    return HighlightsDoc(info, "hand", None, SelectionConfig(), curve, tuple(clips))


CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
CLIPS = (ClipEntry(3600.0, 3605.5, 0.25, 2, "clip_02.mp4"), ClipEntry(60.0, 70.0, 0.75, 1, "clip_01.mp4"))


def test_frame_rate_rounding():
    assert exports.frame_at(60.0, Fraction(24000, 1001)) == 1439  # 1438.56 frames
    assert exports.frame_at(100.0, Fraction(30000, 1001)) == 2997  # 2997.003 frames
    assert exports.frame_at(10.0, Fraction(30000, 1001)) == 300  # 299.7 frames
    assert exports.frame_at(0.5, Fraction(25)) == 13  # 12.5 frames: halves round up
    assert exports.frame_at(1.5, Fraction(25)) == 38


def test_edl_at_23_976():
    lines = exports_otio.edl_text(doc_at(Fraction(24000, 1001), list(CLIPS))).splitlines()
    assert lines[:3] == ["TITLE: final cut highlights", "FCM: NON-DROP FRAME", ""]
    # 60 s -> frame 1439, 70 s -> 1678 (239 frames); 3600 s -> 86314, 3605.5 s -> 86446 (132 frames);
    # the record side starts at 01:00:00:00; the source has no timecode tag, so it counts from 00:00:00:00
    assert lines[3] == "001  finalcut AA/V  C        00:00:59:23 00:01:09:22 01:00:00:00 01:00:09:23"
    assert lines[4:7] == ["* FROM CLIP NAME:  final cut.mov", "* FROM CLIP: file:///videos/final%20cut.mov",
                          "* LOC: 00:00:59:23 GREEN   HIGHLIGHT 1 SCORE 0.75"]
    assert lines[7] == "002  finalcut AA/V  C        00:59:56:10 01:00:01:22 01:00:09:23 01:00:15:11"


def test_edl_at_29_97_drop_frame_and_25():
    clip = [ClipEntry(10.0, 100.0, 1.0, 1)]
    lines = exports_otio.edl_text(doc_at(Fraction(30000, 1001), clip)).splitlines()
    # frames 300 -> 2997 (2697 frames); drop-frame labels skip ;00 and ;01 from minute 1 on
    assert lines[1] == "FCM: DROP FRAME"
    assert lines[3] == "001  finalcut AA/V  C        00:00:10;00 00:01:39;29 01:00:00;00 01:01:29;29"
    # 1.5 s x 25 = 37.5 -> the half rounds up to frame 38; 50 - 38 = 12 frames recorded
    assert exports_otio.edl_text(doc_at(Fraction(25), [ClipEntry(1.5, 2.0, 1.0, 1)])).splitlines()[3] == (
        "001  finalcut AA/V  C        00:00:01:13 00:00:02:00 01:00:00:00 01:00:00:12")


def test_edl_starts_at_the_source_timecode():
    doc = doc_at(Fraction(25), [ClipEntry(1.5, 2.0, 1.0, 1)])
    doc = dataclasses.replace(doc, video=dataclasses.replace(doc.video, start_timecode="10:00:00:00"))
    assert exports_otio.edl_text(doc).splitlines()[3] == (
        "001  finalcut AA/V  C        10:00:01:13 10:00:02:00 01:00:00:00 01:00:00:12")


FORGED = "\n001  AX       V     C        00:00:00:00 00:00:09:00 01:00:00:00 01:00:09:00\r\t\x00\x1b\x85\u2028"


def test_control_characters_cannot_forge_lines():
    doc = doc_at(Fraction(25), [ClipEntry(1.0, 2.0, 0.5, 1, "clip" + FORGED + ".mp4")])
    doc = dataclasses.replace(doc, video=dataclasses.replace(doc.video, path=Path("/videos/evil" + FORGED + ".mov")))
    texts = {"edl": exports_otio.edl_text(doc), "vtt": exports.vtt_text(doc), "ffmeta": exports.ffmeta_text(doc),
             "csv": exports.csv_text(doc)}
    for name, text in texts.items():
        assert not CONTROL.search(text.replace("\n", "")), name  # line breaks are the writers' own only
    edl_lines = texts["edl"].splitlines()
    assert [line for line in edl_lines if line[:3].isdigit()] == [
        "001  evil001A AA/V  C        00:00:01:00 00:00:02:00 01:00:00:00 01:00:01:00"]
    assert "* FROM CLIP NAME:  evil\\n001  AX       V     C" in texts["edl"]
    assert len(otio.adapters.read_from_string(texts["edl"], "cmx_3600", rate=25).video_tracks()[0]) == 1
    assert len(texts["csv"].splitlines()) == 2 and len(list(csv.reader(io.StringIO(texts["csv"])))) == 2
    assert texts["ffmeta"].splitlines()[1].startswith("title=evil\\\\n001  AX")  # ffmetadata escapes the "\\"


def test_vtt_chapters_in_time_order():
    text = exports.vtt_text(doc_at(Fraction(25), list(CLIPS)))
    assert text == ("WEBVTT\n\n1\n00:01:00.000 --> 00:01:10.000\nHighlight 1 (score 0.75)\n\n"
                    "2\n01:00:00.000 --> 01:00:05.500\nHighlight 2 (score 0.25)\n")


def test_ffmetadata_chapters_in_milliseconds():
    text = exports.ffmeta_text(doc_at(Fraction(25), [ClipEntry(1.2345, 2.5, 0.5, 1)]))
    assert text == (";FFMETADATA1\ntitle=final cut highlights\n\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=1234\n"
                    "END=2500\ntitle=Highlight 1 (score 0.5)\n")
    assert exports.ffmeta_escape("a=b;c#d\\e") == "a\\=b\\;c\\#d\\\\e"


def test_csv_rows_by_rank():
    assert exports.csv_text(doc_at(Fraction(25), list(CLIPS))).splitlines() == [
        "rank,start_s,end_s,duration_s,score,path",
        "1,60.000,70.000,10.000,0.75,clip_01.mp4",
        "2,3600.000,3605.500,5.500,0.25,clip_02.mp4",
    ]
