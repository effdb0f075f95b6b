"""highlights.json records the extractor binding the scores came from (`extractors`), the report shows it.

A `--bind` run without a checkpoint (feature_norm's visual role fed by logmel instead of its default
mobilenet_v1_025) must record and show the bound extractor, not the method's default; a file written
before the field existed still reads, and its report falls back to the method's default binding.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
from pathlib import Path

import numpy as np
import pytest

from avhighlights.cli.main import main
from avhighlights.core.sample import FeatureSource
from avhighlights.core.types import ScoreCurve
from avhighlights.extractors import EXTRACTORS
from avhighlights.pipeline.report_html import binding_text
from avhighlights.pipeline.results import read_results
from avhighlights.pipeline.synth import SyntheticSpec, make_synthetic_video

BINDING_ROW = re.compile(r"<dt>extractor binding</dt><dd>([^<]*)</dd>")
CLI_OPTIONS = ["--no-clips", "--no-reel", "--no-cache", "--progress", "none", "--export", "json,html"]


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return make_synthetic_video(tmp_path_factory.mktemp("binding") / "clip.mp4",
                                SyntheticSpec(duration_s=4.0, event_times_s=(1.0,), event_len_s=1.0))


def shown_binding(folder: Path) -> str:
    [row] = BINDING_ROW.findall((folder / "report.html").read_text(encoding="utf-8"))
    return html.unescape(row)


def score(video: Path, out: Path, *options: str) -> Path:
    assert main(["score", str(video), "--out", str(out), *options, *CLI_OPTIONS]) == 0
    return out / video.stem


def test_bound_extractor_is_recorded_and_shown(video, tmp_path):
    folder = score(video, tmp_path / "out", "--method", "feature_norm", "--bind", "visual=logmel")
    data = json.loads((folder / "highlights.json").read_text())
    logmel = EXTRACTORS.get("logmel")
    assert data["checkpoint"] is None
    assert data["extractors"] == {"visual": {"name": "logmel", "version": logmel.version, "kind": "extractor",
                                             "dim": 128}}
    assert read_results(folder / "highlights.json").extractors == {"visual": FeatureSource("logmel", logmel.version,
                                                                                         "extractor", 128)}
    wanted = f"visual: logmel {logmel.version} (bound at run time; the method's default: visual: mobilenet_v1_025)"
    assert shown_binding(folder) == wanted
    assert main(["render", str(folder / "highlights.json"), "--out", str(tmp_path / "again"), *CLI_OPTIONS[:2],
                 "--progress", "none", "--export", "json,html"]) == 0  # a re-render keeps the binding
    assert json.loads((tmp_path / "again" / "highlights.json").read_text())["extractors"] == data["extractors"]
    assert shown_binding(tmp_path / "again") == wanted


def test_file_without_the_field_still_reads(video, tmp_path):
    folder = score(video, tmp_path / "out", "--method", "loudness")
    data = json.loads((folder / "highlights.json").read_text())
    assert data["extractors"]["loudness"]["name"] == "loudness"
    assert shown_binding(folder) == f"loudness: loudness {EXTRACTORS.get('loudness').version} (the method's default)"
    del data["extractors"]  # as written before the binding was recorded
    old = tmp_path / "old" / "highlights.json"
    old.parent.mkdir()
    old.write_text(json.dumps(data))
    assert read_results(old).extractors is None
    assert main(["render", str(old), "--out", str(tmp_path / "old"), *CLI_OPTIONS[:2], "--progress", "none",
                 "--export", "json,html"]) == 0
    assert "extractors" not in json.loads(old.read_text())  # nothing invented for it
    assert shown_binding(tmp_path / "old") == "loudness: loudness (the method's default)"


def test_recorded_empty_binding_and_checkpoint_binding_are_named(video, tmp_path):
    folder = score(video, tmp_path / "out", "--method", "loudness")
    doc = read_results(folder / "highlights.json")
    assert binding_text(dataclasses.replace(doc, method="random", extractors={})) == (
        "none (the method reads no features)")
    with_checkpoint = dataclasses.replace(doc, checkpoint="/nowhere/model.safetensors")  # not read: recorded
    assert binding_text(with_checkpoint) == f"loudness: loudness {EXTRACTORS.get('loudness').version} (checkpoint)"


def test_flow_curve_json_carries_the_binding():
    pytest.importorskip("prefect")
    from avhighlights.flows.extract_and_score import curve_from_json, curve_to_json

    binding = {"visual": FeatureSource("logmel", "1", "extractor", 128)}
    curve = ScoreCurve(np.zeros(2), np.arange(2.0), np.arange(1.0, 3.0), "feature_norm", None, {}, binding)
    assert curve_from_json(json.loads(json.dumps(curve_to_json(curve)))).extractors == binding
    assert curve_from_json({**curve_to_json(curve), "extractors": None}).extractors is None
