"""The selection in user terms through every orchestrated entry point: the watch options become deployment
parameters that extract-and-score accepts and applies, and reprocess-dataset takes them too (and still
resumes). The flow runs use the session's Prefect server (tests/prefect_fixtures.py)."""

from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("prefect")

from avhighlights.cli.run_config import run_config_from_args  # noqa: E402
from avhighlights.cli.watch import build_parser  # noqa: E402
from avhighlights.core.errors import ConfigError  # noqa: E402

WATCH_BASE = ["--folder", "i", "--out", "o", "--quarantine", "q", "--state", "s", "--once"]


def _watch_parameters(tmp_path: Path, *options: str) -> dict:
    from avhighlights.flows.watch_folder import run_parameters

    args = build_parser().parse_args([*WATCH_BASE, "--store", str(tmp_path / "store"), *options])
    return run_parameters(str(tmp_path / "out"), run_config_from_args(args))


def test_watch_selection_options_become_run_parameters_of_the_flow(tmp_path):
    from avhighlights.flows.extract_and_score import extract_and_score

    params = _watch_parameters(tmp_path, "--target-s", "6", "--pad-s", "0.5", "--threshold-quantile", "0.25")
    assert params["config"]["selection"] == {"target_s": 6.0, "pad_s": 0.5, "threshold_quantile": 0.25}
    assert set(params) <= set(inspect.signature(extract_and_score.fn).parameters)
    assert _watch_parameters(tmp_path)["config"] == {"store": str(tmp_path / "store")}
    with pytest.raises(ConfigError):
        _watch_parameters(tmp_path, "--target-s", "-1")


def test_extract_and_score_applies_the_watch_selection(prefect_server, synthetic_video, tmp_path):
    from avhighlights.flows.extract_and_score import extract_and_score

    params = _watch_parameters(tmp_path, "--target-s", "6", "--pad-s", "0.5")
    summary = extract_and_score(video=str(synthetic_video), **params)
    doc = json.loads(Path(summary["results_json"]).read_text())
    assert doc["selection"]["target_s"] == 6.0 and doc["selection"]["pad_s"] == 0.5
    assert doc["selection"]["mode"] == "target_s" and doc["selection"]["threshold_score"] is not None
    assert summary["warnings"] == [] and doc["warnings"] == []
    assert 0.0 < summary["selected_s"] <= 6.0 + 1e-6


def test_reprocess_takes_a_quantile_threshold_and_still_resumes(prefect_server, short_video, tmp_path):
    from avhighlights.flows.reprocess import reprocess_dataset

    (tmp_path / "data").mkdir()
    shutil.copy(short_video, tmp_path / "data" / "a.mp4")
    out, store = str(tmp_path / "out"), str(tmp_path / "store")
    config = {"store": store, "selection": {"threshold_quantile": 0.9, "min_clip_s": 0.0}}
    first = reprocess_dataset(str(tmp_path / "data"), out, config, evaluate=False)
    doc = json.loads((tmp_path / "out" / "a" / "highlights.json").read_text())
    threshold = doc["selection"]["threshold_score"]
    assert first["done"] == 1 and doc["selection"]["mode"] == "threshold"
    assert all(c["score"] >= threshold for c in doc["clips"]) and doc["clips"]
    picked = [s for s in doc["scores"] if s["score"] >= threshold]
    assert sum(c["end_s"] - c["start_s"] for c in doc["clips"]) == pytest.approx(len(picked), abs=1.0)
    again = reprocess_dataset(str(tmp_path / "data"), out, config, evaluate=False)
    assert (again["done"], again["skipped"]) == (0, 1)
