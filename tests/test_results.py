"""highlights.json: round trip and validation of hand-edited documents."""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from avhighlights.core.errors import ConfigError
from avhighlights.core.sample import FeatureSource
from avhighlights.core.types import ScoreCurve, Segment, VideoInfo
from avhighlights.pipeline.results import SCHEMA, ResultsError, make_doc, read_results, write_results
from avhighlights.pipeline.select import SelectionConfig


def video_info(path: Path = Path("/videos/match.mp4"), duration_s: float = 10.0) -> VideoInfo:
    return VideoInfo(path=path, sha256="ab" * 32, duration_s=duration_s, fps=Fraction(30000, 1001),
                     variable_frame_rate=False, width=1280, height=720, rotation_deg=0, video_codec="h264",
                     has_audio=True, audio_codec="aac", audio_sample_rate=48000, audio_channels=2)


def sample_doc():
    curve = ScoreCurve(np.arange(10, dtype=float), np.arange(10.0), np.arange(1.0, 11.0), "hand", "ckpt.safetensors")
    segments = [Segment(2.0, 4.0, 2.5, 2), Segment(7.0, 10.0, 8.0, 1)]
    return make_doc(video_info(), curve, segments, SelectionConfig(top_ratio=0.5, pad_s=0.25))


def written(tmp_path: Path, edit=None) -> Path:
    path = write_results(sample_doc(), tmp_path / "highlights.json")
    if edit is not None:
        data = json.loads(path.read_text())
        edit(data)
        path.write_text(json.dumps(data))
    return path


def test_round_trip_keeps_every_field(tmp_path):
    doc = sample_doc()
    back = read_results(write_results(doc, tmp_path / "highlights.json"))
    assert back.video == doc.video and back.video.fps == Fraction(30000, 1001)
    assert back.method == "hand" and back.checkpoint == "ckpt.safetensors"
    assert back.selection == SelectionConfig(top_ratio=0.5, pad_s=0.25)
    assert back.clips == doc.clips
    np.testing.assert_array_equal(back.curve.scores, np.arange(10.0))
    np.testing.assert_array_equal(back.curve.end_s, np.arange(1.0, 11.0))
    assert back.created_utc == doc.created_utc and back.source == tmp_path / "highlights.json"


def test_document_layout_matches_the_schema(tmp_path):
    data = json.loads(written(tmp_path).read_text())
    assert list(data) == ["schema", "video", "method", "checkpoint", "selection", "scores", "clips", "reel",
                          "created_utc", "tool_version", "warnings"]
    assert data["schema"] == SCHEMA and data["reel"] is None and data["warnings"] == []
    assert data["selection"]["mode"] == "top_ratio" and data["selection"]["threshold_score"] is not None
    assert data["scores"][3] == {"start_s": 3.0, "end_s": 4.0, "score": 3.0}
    assert [c["rank"] for c in data["clips"]] == [1, 2]  # best first
    assert data["clips"][0] == {"start_s": 7.0, "end_s": 10.0, "score": 8.0, "rank": 1, "path": None}
    assert data["video"]["fps"] == "30000/1001"


def test_extractor_binding_round_trips(tmp_path):
    binding = {"visual": FeatureSource("logmel", "1", "extractor", 128)}
    doc = sample_doc()
    doc = make_doc(doc.video, dataclasses.replace(doc.curve, extractors=binding), doc.segments(), doc.selection)
    data = json.loads(write_results(doc, tmp_path / "highlights.json").read_text())
    assert list(data)[-1] == "extractors"
    assert data["extractors"] == {"visual": {"name": "logmel", "version": "1", "kind": "extractor", "dim": 128}}
    back = read_results(tmp_path / "highlights.json")
    assert back.extractors == binding and back.curve.extractors == binding


def test_edited_clip_without_rank_and_score_gets_both(tmp_path):
    def edit(data):
        del data["clips"][0]  # the user deletes the best clip ...
        data["clips"].append({"start_s": 5.0, "end_s": 6.5})  # ... and adds one by hand

    doc = read_results(written(tmp_path, edit))
    assert [(c.start_s, c.end_s, c.rank) for c in doc.clips] == [(2.0, 4.0, 2), (5.0, 6.5, 1)]
    assert doc.clips[1].score == pytest.approx((5.0 * 1.0 + 6.0 * 0.5) / 1.5)  # overlap-weighted scores


def test_end_within_a_millisecond_beyond_duration_is_clamped(tmp_path):
    doc = read_results(written(tmp_path, lambda d: d["clips"][0].update(end_s=10.0005)))
    assert max(c.end_s for c in doc.clips) == 10.0


@pytest.mark.parametrize(("edit", "field", "problem"), [
    (lambda d: d["clips"][0].update(end_s=6.0), "clips[0].end_s", "not after start_s"),
    (lambda d: d["clips"][1].update(start_s=12.0, end_s=13.0), "clips[1].start_s", "outside the video"),
    (lambda d: d["clips"][0].update(end_s=11.0), "clips[0].end_s", "beyond the video's duration"),
    (lambda d: d["clips"][1].update(rank=1), "clips[1].rank", "also used by clips[0]"),
    (lambda d: d["clips"][0].update(rank=0), "clips[0].rank", "positive integer"),
    (lambda d: d["clips"][0].update(start_s="7"), "clips[0].start_s", "finite number"),
    (lambda d: d["scores"][2].update(end_s=1.0), "scores[2].end_s", "before start_s"),
    (lambda d: d.update(schema="other/1"), "schema", "expected"),
    (lambda d: d["video"].pop("fps"), "video", "not a valid video description"),
    (lambda d: d["video"].update(duration_s=0), "video.duration_s", "must be positive"),
    (lambda d: d["selection"].update(top_ratio=2.0), "selection", "top_ratio"),
    (lambda d: d["selection"].update(top_k=3), "selection", "unknown or missing fields"),
    (lambda d: d.update(clips={}), "clips", "must be a list"),
    (lambda d: d.update(extractors=["logmel"]), "extractors", "must be an object"),
    (lambda d: d.update(extractors={"visual": {"version": "1"}}), "extractors.visual.name", "non-empty string"),
    (lambda d: d.update(extractors={"visual": {"name": "logmel", "version": "1", "dim": -1}}), "extractors.visual.dim",
     "non-negative integer"),
])
def test_bad_edits_name_the_file_and_the_field(tmp_path, edit, field, problem):
    path = written(tmp_path, edit)
    with pytest.raises(ResultsError) as info:
        read_results(path)
    assert info.value.field_name == field
    assert problem in str(info.value) and str(path) in str(info.value)
    assert isinstance(info.value, ConfigError)


def test_unreadable_files(tmp_path):
    with pytest.raises(ResultsError, match="does not exist"):
        read_results(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema": ')
    with pytest.raises(ResultsError, match="not valid JSON"):
        read_results(broken)
