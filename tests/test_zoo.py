"""The model zoo (avhighlights/zoo) and the scorer factory's zoo sources: `--checkpoint zoo:NAME`, the default
zoo model of a method that must be trained, the sha256 check, `avhighlights methods`, and `--device` reaching
the method. A temporary zoo folder ($AVH_ZOO_DIR) holds a tiny checkpoint saved here."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from avhighlights.cli.main import main
from avhighlights.core.errors import CheckpointError, ConfigError
from avhighlights.core.sample import FeatureSource, Sample
from avhighlights.extractors import create_extractor
from avhighlights.models.base import create_method
from avhighlights.models.checkpoint import save_checkpoint
from avhighlights.pipeline.run import RenderOptions, score_videos
from avhighlights.pipeline.run_config import ScorerSpec
from avhighlights.pipeline.scorer import create_scorer, parse_scorer_source
from avhighlights.zoo import default_entry, zoo_entries, zoo_entry, zoo_path

BINDING = {"visual": "loudness", "audio": "loudness"}  # the cheapest extractor feeds both roles
TINY_JVA = {"d_model": 8, "heads": 2, "fc_hidden": 4, "epochs": 1}
NO_FILES = RenderOptions(write_reel=False, write_clips=False, formats=("json",))


def save_tiny_joint_va(path: Path) -> Path:
    """A joint_va checkpoint with random weights, bound to loudness for both roles."""
    loudness = create_extractor("loudness", device="cpu")
    dims = {role: loudness.dim for role in BINDING}
    torch.manual_seed(0)
    method = create_method("joint_va", dims, TINY_JVA)
    rng = np.random.default_rng(0)
    method.fit([Sample("train", {r: rng.normal(size=(10, d)).astype(np.float32) for r, d in dims.items()}, 1.0,
                       labels=(rng.random(10) < 0.5).astype(np.float32))])
    binding = {r: FeatureSource(loudness.name, loudness.version, "extractor", loudness.dim) for r in BINDING}
    return save_checkpoint(method, path, binding, {"note": "random weights, tests only"})


@pytest.fixture
def zoo(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "zoo"
    folder.mkdir()
    checkpoint = save_tiny_joint_va(folder / "tiny-jva.safetensors")
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    models = [{"name": "tiny-jva", "method": "joint_va", "file": checkpoint.name, "sha256": digest, "default": True,
               "summary": "random weights for tests", "numbers": {"youtube_lodo_mean": 12.5}},
              {"name": "tiny-jva-alt", "method": "joint_va", "file": checkpoint.name, "sha256": digest,
               "summary": "the same file, not the default"}]
    (folder / "index.json").write_text(json.dumps({"format": "avhighlights-zoo/1", "models": models}))
    monkeypatch.setenv("AVH_ZOO_DIR", str(folder))
    return folder


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    from avhighlights.pipeline.synth import SyntheticSpec, make_synthetic_video

    path = tmp_path_factory.mktemp("zoo_clip") / "clip.mp4"
    return make_synthetic_video(path, SyntheticSpec(duration_s=4.0, width=64, height=48, fps=8, scene_len_s=2.0,
                                                    event_times_s=(2.0,), event_len_s=1.0))


def test_the_shipped_index_is_readable():
    shipped = Path(__file__).resolve().parents[1] / "avhighlights" / "zoo" / "index.json"
    assert json.loads(shipped.read_text())["format"] == "avhighlights-zoo/1"
    entries = zoo_entries()
    assert all(e.method and e.file and len(e.sha256) == 64 for e in entries)
    raw = {m["name"]: m["numbers"] for m in json.loads(shipped.read_text())["models"]}
    for entry in entries:  # a null card number (not measured) is left out, the others kept as floats
        assert entry.numbers == {k: float(v) for k, v in raw[entry.name].items() if v is not None}


def test_entries_names_defaults_and_the_sha256_check(zoo):
    assert [e.name for e in zoo_entries()] == ["tiny-jva", "tiny-jva-alt"]
    assert default_entry("joint_va").name == "tiny-jva" and default_entry("davihd") is None
    entry = zoo_entry("zoo:tiny-jva-alt")
    assert not entry.default and entry.numbers == {} and zoo_path(entry) == zoo / "tiny-jva.safetensors"
    assert zoo_entry("tiny-jva").numbers == {"youtube_lodo_mean": 12.5}
    with pytest.raises(CheckpointError, match="known: tiny-jva, tiny-jva-alt"):
        zoo_entry("nope")
    (zoo / "tiny-jva.safetensors").write_bytes(b"tampered")
    with pytest.raises(CheckpointError, match="sha256"):
        zoo_path(entry)
    with pytest.raises(CheckpointError, match="sha256"):
        parse_scorer_source(ScorerSpec(checkpoint="zoo:tiny-jva"))


def test_factory_sources(zoo):
    """One parse decides the source: zoo by name, the method's default zoo model, a fresh reference method, an
    on-the-fly fit is preferred to a zoo model only for unsupervised methods (none here)."""
    named = parse_scorer_source(ScorerSpec(checkpoint="zoo:tiny-jva-alt"))
    assert (named.kind, named.method, named.label, named.by_default) == ("zoo", "joint_va", "zoo:tiny-jva-alt", False)
    default = parse_scorer_source(ScorerSpec(method="joint_va"))
    assert (default.kind, default.label, default.by_default) == ("zoo", "zoo:tiny-jva", True)
    assert parse_scorer_source(ScorerSpec(method="loudness")).kind == "fresh"
    with pytest.raises(ConfigError, match="must be trained first"):
        parse_scorer_source(ScorerSpec(method="hpcl"))  # supervised, no zoo model


def test_score_uses_the_default_zoo_model_and_records_it(zoo, clip, tmp_path):
    lines: list[str] = []
    [result] = score_videos([clip], ScorerSpec(method="joint_va"), tmp_path / "out", store=None, render=NO_FILES,
                            notify=lines.append)
    doc = json.loads(result.results_json.read_text())
    assert lines == ["using zoo model tiny-jva (random weights for tests)"]
    assert doc["method"] == "joint_va" and doc["checkpoint"] == "zoo:tiny-jva" and len(doc["scores"]) == 4
    [named] = score_videos([clip], ScorerSpec(checkpoint="zoo:tiny-jva-alt"), tmp_path / "out2", store=None,
                           render=NO_FILES, notify=lines.append)
    assert json.loads(named.results_json.read_text())["checkpoint"] == "zoo:tiny-jva-alt" and len(lines) == 1
    assert json.loads(named.results_json.read_text())["scores"] == doc["scores"]  # the same weights


def test_cli_score_and_methods_show_the_zoo(zoo, clip, tmp_path, capsys):
    assert main(["score", str(clip), "--method", "joint_va", "--out", str(tmp_path / "out"), "--no-cache",
                 "--no-clips", "--no-reel", "--export", "json"]) == 0
    captured = capsys.readouterr()
    assert "using zoo model tiny-jva (random weights for tests)" in captured.err + captured.out
    doc = json.loads((tmp_path / "out" / "clip" / "highlights.json").read_text())
    assert doc["checkpoint"] == "zoo:tiny-jva"
    assert main(["score", str(clip), "--checkpoint", "zoo:missing", "--out", str(tmp_path / "o2")]) == 5
    assert main(["methods"]) == 0
    listing = capsys.readouterr().out
    assert "zoo:tiny-jva (default): random weights for tests [youtube_lodo_mean 12.5]" in listing
    assert "zoo:tiny-jva-alt: the same file, not the default" in listing


def test_device_reaches_the_method(zoo):
    """`ScorerSpec.device` moves a checkpoint-loaded or fresh torch method (here to torch's meta device, which
    holds no data: proof that the factory moved the network, on any machine)."""
    scorer = create_scorer(ScorerSpec(checkpoint="zoo:tiny-jva", binding_overrides=None, device="meta"))
    assert scorer.method.device == torch.device("meta")
    assert all(p.is_meta for p in scorer.method.module.parameters())
    default = create_scorer(ScorerSpec(checkpoint="zoo:tiny-jva"))  # no device: the method's own choice
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert default.method.device.type == expected and all(p.device.type == expected
                                                          for p in default.method.module.parameters())
    fresh = create_method("joint_va", {"visual": 1, "audio": 1}, TINY_JVA).to_device("meta")
    assert all(p.is_meta for p in fresh.module.parameters())
    reference = create_scorer(ScorerSpec(method="loudness", device="cpu"))  # no network: nothing to move
    assert reference.method.name == "loudness"


@pytest.mark.gpu
def test_device_cuda_scores_on_the_gpu(zoo, clip, tmp_path):
    scorer = create_scorer(ScorerSpec(checkpoint="zoo:tiny-jva", device="cuda"))
    assert all(p.device.type == "cuda" for p in scorer.method.module.parameters())
    [result] = score_videos([clip], ScorerSpec(checkpoint="zoo:tiny-jva", device="cuda"), tmp_path / "o",
                            store=None, render=NO_FILES)
    assert len(json.loads(result.results_json.read_text())["scores"]) == 4
