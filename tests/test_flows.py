"""extract-and-score on a real local Prefect server: clips on disk, features shared between methods
through the store, artifacts, fail-fast typed errors, enforced timeouts, corrupt cache entries."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("prefect")

from fit_fixtures import BINDING, TINY_RECURRENCE, tiny_videos  # noqa: E402, F401 (fixture)

from avhighlights.core.errors import ConfigError, MediaError  # noqa: E402
from avhighlights.core.sample import FeatureSource, Sample
from avhighlights.extractors import create_extractor  # noqa: E402
from avhighlights.extractors.store import FeatureStore  # noqa: E402
from avhighlights.models.base import create_method  # noqa: E402
from avhighlights.models.checkpoint import save_checkpoint  # noqa: E402


def tiny_checkpoint(path: Path) -> Path:
    """A random-weight joint_va checkpoint bound to logmel (visual role) + loudness (audio role)."""
    visual, audio = create_extractor("logmel", device="cpu"), create_extractor("loudness", device="cpu")
    dims = {"visual": visual.dim, "audio": audio.dim}
    torch.manual_seed(0)
    method = create_method("joint_va", dims, {"d_model": 16, "heads": 2, "fc_hidden": 8, "epochs": 1})
    rng = np.random.default_rng(0)
    labels = (rng.random(12) < 0.5).astype(np.float32)
    feats = {role: rng.normal(size=(12, d)).astype(np.float32) for role, d in dims.items()}
    method.fit([Sample("train", feats, 1.0, labels=labels)])
    binding = {"visual": FeatureSource(visual.name, visual.version, "extractor", visual.dim),
               "audio": FeatureSource(audio.name, audio.version, "extractor", audio.dim)}
    return save_checkpoint(method, path, binding, {"note": "random weights, tests only"})


def test_flow_writes_clips_and_second_method_reuses_features(prefect_server, short_video, tmp_path):
    from avhighlights.flows.extract_and_score import extract_and_score

    store, out = str(tmp_path / "store"), tmp_path / "out"
    first = extract_and_score(str(short_video), {"scorer": {"method": "loudness"}, "store": store}, str(out))
    assert first["cache_misses"] == ["loudness"] and first["n_clips"] >= 1
    assert first["n_clips"] == len(first["clips"]) and all(Path(c["path"]).is_file() for c in first["clips"])
    doc = json.loads(Path(first["results_json"]).read_text())
    assert doc["method"] == "loudness" and Path(first["out_dir"]) == out / short_video.stem
    assert {role: src["name"] for role, src in doc["extractors"].items()} == {"loudness": "loudness"}  # via tasks
    assert (out / short_video.stem / "report.html").is_file() and "report.html" in (out / "index.html").read_text()
    checkpoint = tiny_checkpoint(tmp_path / "jva.safetensors")
    with_checkpoint = {"scorer": {"checkpoint": str(checkpoint)}, "store": store}
    second = extract_and_score(str(short_video), with_checkpoint, out_dir=str(tmp_path / "out2"))
    assert second["cache_hits"] == {"loudness": True, "logmel": False} and second["method"] == "joint_va"
    recorded = json.loads(Path(second["results_json"]).read_text())["extractors"]
    assert sorted(src["name"] for src in recorded.values()) == ["logmel", "loudness"]  # the checkpoint's binding
    again = extract_and_score(str(short_video), with_checkpoint, out_dir=str(tmp_path / "out2"))
    assert again["cache_misses"] == [] and again["feature_keys"] == second["feature_keys"]
    assert sorted(FeatureStore(store).keys()) == sorted(second["feature_keys"].values())


def _task_runs(flow_run_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        return client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))


def test_corrupt_cache_entry_is_recomputed(prefect_server, short_video, tmp_path):
    from avhighlights.flows.extract_and_score import extract_and_score

    store = str(tmp_path / "store")
    first = extract_and_score(str(short_video), {"store": store}, out_dir=str(tmp_path / "out"))
    key = first["feature_keys"]["loudness"]
    features = tmp_path / "store" / key[:2] / key / "features.npy"
    features.write_bytes(features.read_bytes()[:-8] + b"garbage!")
    second = extract_and_score(str(short_video), {"store": store}, out_dir=str(tmp_path / "out"))
    assert second["cache_misses"] == ["loudness"] and second["feature_keys"]["loudness"] == key
    assert FeatureStore(store).verify().corrupt == [] and second["clips"] == first["clips"]


def test_media_error_fails_fast_without_retries(prefect_server, tmp_path):
    from avhighlights.flows.extract_and_score import extract_and_score

    bogus = tmp_path / "not a video.mp4"
    bogus.write_text("just text")
    state = extract_and_score(str(bogus), {"store": str(tmp_path / "s")}, out_dir=str(tmp_path / "out"),
                              return_state=True)
    assert state.is_failed()
    with pytest.raises(MediaError, match="not a video.mp4"):
        state.result()
    probes = [r for r in _task_runs(state.state_details.flow_run_id) if r.name.startswith("probe")]
    assert len(probes) == 1 and probes[0].run_count == 1 and probes[0].state.is_failed()
    assert not (tmp_path / "out").exists()


def test_transient_errors_are_retried_typed_errors_are_not():
    from prefect.states import Failed
    from prefect.task_engine import TaskRunTimeoutError

    from avhighlights.flows.concurrency import is_transient, retry_transient

    assert is_transient(ConnectionResetError("peer reset")) and is_transient(TimeoutError("read timed out"))
    assert not is_transient(MediaError("x.mp4", "truncated")) and not is_transient(ValueError("bad"))
    assert not is_transient(TaskRunTimeoutError("ran past its timeout"))
    assert retry_transient(None, None, Failed(data=OSError("disk hiccup")))
    assert not retry_transient(None, None, Failed(data=MediaError("x.mp4", "no video stream")))


def test_task_timeout_is_enforced(prefect_server, synthetic_video, tmp_path, monkeypatch):
    import time

    from avhighlights.flows.extract_and_score import extract_and_score

    monkeypatch.setenv("AVH_TIMEOUT_EXTRACT_S", "0.02")
    t0 = time.monotonic()
    config = {"scorer": {"method": "loudness"}, "store": str(tmp_path / "store")}
    state = extract_and_score(str(synthetic_video), config, out_dir=str(tmp_path / "out"), return_state=True)
    assert state.is_failed() and time.monotonic() - t0 < 30
    extract = [r for r in _task_runs(state.state_details.flow_run_id) if r.name == "extract-loudness"]
    assert len(extract) == 1 and extract[0].state.name == "TimedOut" and extract[0].run_count == 1
    assert "timeout" in extract[0].state.message.lower()
    assert list(FeatureStore(str(tmp_path / "store")).keys()) == []


def test_run_report_and_progress_artifacts(prefect_server, short_video, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from avhighlights.flows.extract_and_score import extract_and_score

    state = extract_and_score(str(short_video), {"store": str(tmp_path / "store")}, out_dir=str(tmp_path / "out"),
                              return_state=True)
    summary = state.result()
    with get_client(sync_client=True) as client:
        flt = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]))
        artifacts = {a.type: a for a in client.read_artifacts(artifact_filter=flt)}
    assert artifacts["progress"].data == 100.0
    report = artifacts["markdown"].data
    assert "data:image/png;base64," in report and f"| {summary['clips'][0]['rank']} |" in report
    assert all(Path(c["path"]).name in report for c in summary["clips"])


def test_gpu_limit_created_resized_and_held_by_cuda_work(prefect_server):
    from prefect.client.orchestration import get_client

    from avhighlights.flows.concurrency import GPU_LIMIT, ensure_gpu_limit, gpu_slot

    assert ensure_gpu_limit(2) == 2 and ensure_gpu_limit(1) == 1

    def active() -> int:
        with get_client(sync_client=True) as client:
            return client.read_global_concurrency_limit_by_name(GPU_LIMIT).active_slots

    with gpu_slot("cpu"):
        assert active() == 0
    with gpu_slot("cuda"):
        assert active() == 1
    assert active() == 0


def test_flow_fits_an_unsupervised_method_on_the_fly_and_reuses_the_fit(prefect_server, tiny_videos, tmp_path,  # noqa: F811
                                                                        monkeypatch):
    """No checkpoint: recurrence is fitted on the video plus the library (the `fit` task), fit.json names the fit,
    and a later run on a video the fit already saw reuses it. A supervised method without a checkpoint, or a
    binding to an unknown role, fails in the plan task before any extraction."""
    from avhighlights.flows.extract_and_score import extract_and_score

    monkeypatch.setenv("AVH_CACHE_DIR", str(tmp_path / "cache"))
    scorer = {"method": "recurrence", "binding_overrides": BINDING, "method_overrides": TINY_RECURRENCE,
              "auto_fit": {"library": [str(tiny_videos[0].parent)]}}
    common = {"scorer": scorer, "store": str(tmp_path / "store")}
    first = extract_and_score(str(tiny_videos[4]), common, out_dir=str(tmp_path / "o1"))
    assert first["fit"]["status"] == "fitted" and first["fit"]["n_fitted"] == 4  # the video + 3 library videos
    assert first["method"] == "recurrence" and first["checkpoint"] == first["fit"]["checkpoint"]
    assert json.loads((Path(first["out_dir"]) / "fit.json").read_text()) == first["fit"]
    assert first["n_clips"] >= 1 and set(first["cache_hits"]) == set(BINDING.values())
    again = extract_and_score(str(tiny_videos[1]), common, out_dir=str(tmp_path / "o2"))
    assert again["fit"]["status"] == "subset" and again["checkpoint"] == first["checkpoint"]
    assert again["cache_misses"] == []  # the library's features were stored by the first fit
    monkeypatch.setenv("AVH_ZOO_DIR", str(tmp_path / "empty_zoo"))  # no zoo model for joint_va to fall back on
    for bad in ({"method": "joint_va"}, {"binding_overrides": {"nosuchrole": "logmel"}}):
        state = extract_and_score(str(tiny_videos[4]), {**common, "scorer": {**scorer, **bad}},
                                  out_dir=str(tmp_path / "o3"), return_state=True)
        assert state.is_failed()
        with pytest.raises(ConfigError):
            state.result()
    assert not (tmp_path / "o3").exists()
