"""Checkpoints from `bench --save-checkpoints` and `train`, `bench --checkpoint`, and the near-constant
collapse check (avhighlights.core.near_constant) in bench, fit and score. Synthetic labelled folders here;
the same on the shared YouTube Highlights features at the bottom (marked data)."""

# ruff: noqa: F811  (test parameters shadow the imported fixtures)
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from fit_fixtures import fit_store, tiny_videos  # noqa: F401 (fixtures)

from avhighlights.core.errors import CheckpointMismatchError, ConfigError
from avhighlights.core.sample import FeatureSource, Sample
from avhighlights.core.timebase import FeatureTrack, Spans
from avhighlights.core.types import ScoreCurve
from avhighlights.evaluation.bench import run_bench
from avhighlights.evaluation.bench_checkpoints import checkpoint_path
from avhighlights.evaluation.folder_data import FolderDataset
from avhighlights.evaluation.train import train_checkpoint, training_pool, validation_split
from avhighlights.models.base import METHODS, HighlightMethod, collapsed_fraction, is_near_constant
from avhighlights.models.checkpoint import read_checkpoint_info
from avhighlights.pipeline.select import score_warnings

SOURCES = {"visual": FeatureSource("synthetic_gaussian", "1", "dataset", 4)}


@dataclass(frozen=True)
class _LinearConfig:
    offset: float = 0.0
    amplitude: float = 1.0


class _Linear(HighlightMethod):
    """A real (tiny) trainable method with state: score = offset + amplitude * tanh(z), z the per-video z-score of
    features . w, w the least-squares fit of the training labels (supervised) or the mean training feature."""

    Config = _LinearConfig
    roles = ("visual",)
    default_binding = {"visual": "logmel"}

    def __init__(self, config, feature_dims):
        super().__init__(config, feature_dims)
        self.w = np.zeros(self.feature_dims["visual"], dtype=np.float32)
        self.fitted_on: list[str] = []

    def fit(self, train, val=None, seed=0, progress=None):
        x = np.concatenate([s.features["visual"] for s in train])
        if self.supervised:
            y = np.concatenate([s.labels for s in train]) - 0.5
            self.w = np.linalg.lstsq(x, y, rcond=None)[0].astype(np.float32)
        else:
            self.w = x.mean(axis=0).astype(np.float32)
        self.fitted_on = [s.video_id for s in train] + [s.video_id for s in (val or [])]
        return {"best_epoch": 0, "n_train": len(train)}

    def predict(self, sample: Sample) -> np.ndarray:
        raw = np.asarray(sample.features["visual"], dtype=np.float64) @ self.w
        return self.config.offset + self.config.amplitude * np.tanh((raw - raw.mean()) / max(raw.std(), 1e-9))

    def state_dict(self):
        return {"w": torch.from_numpy(self.w.copy())}

    def load_state_dict(self, state):
        self.w = np.asarray(state["w"], dtype=np.float32)


@METHODS.register("test_ckpt_linear")
class _SupervisedLinear(_Linear):
    supervised = True


@METHODS.register("test_ckpt_unsupervised")
class _UnsupervisedLinear(_Linear):
    supervised = False
    default_binding = {"visual": "loudness"}


def _folder(root: Path, sources=SOURCES, n: int = 8) -> FolderDataset:
    """n labelled 12-s videos (labels follow feature 0, so training helps); train v0..v4, val v5, test v5..."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        feats = np.random.default_rng(i).normal(size=(12, 4)).astype(np.float32)
        (root / f"v{i}.mp4").write_bytes(b"")
        (root / f"v{i}.labels.json").write_text(json.dumps({"scores": (feats[:, 0] > 0).astype(float).tolist()}))
    ids = [f"v{i}" for i in range(n)]
    (root / "splits.json").write_text(json.dumps({"train": ids[:5], "val": ids[5:6], "test": ids[5:]}))

    def features_for(video: Path) -> dict[str, FeatureTrack]:
        feats = np.random.default_rng(int(video.stem[1:])).normal(size=(12, 4)).astype(np.float32)
        return {"visual": FeatureTrack(feats, Spans.regular(12, 1.0)),
                "audio": FeatureTrack(np.tanh(feats[:, ::-1] + 0.1), Spans.regular(12, 1.0))}

    return FolderDataset(root, features_for, sources)


def test_near_constant_is_relative_to_the_scores_scale():
    t = np.linspace(0, 6, 60)
    assert is_near_constant(1.0 + 1e-3 * (np.sin(t) + 1) / 2)  # span 1e-3 on scores of scale 1
    assert is_near_constant(np.full(9, 0.7)) and is_near_constant(np.zeros(5))
    assert is_near_constant(2e-4 * np.sin(t))  # logits of a head collapsed at ln 2 (near 0): the unit is the scale
    assert is_near_constant(1000.0 + 0.5 * np.sin(t))  # range 1e-3 of 1000
    assert not is_near_constant(1.0 + 0.01 * np.sin(t))
    assert not is_near_constant(1000.0 + 5.0 * np.sin(t))
    assert not is_near_constant(np.arange(5.0)) and not is_near_constant(np.ones(1))
    fractions = collapsed_fraction([np.zeros(5), np.arange(5.0), 1 + 1e-4 * np.arange(3), np.ones(1)])
    assert fractions == pytest.approx(2 / 3)


def test_score_warns_once_about_near_constant_scores_and_not_about_a_normal_curve():
    def curve(scores):
        n = len(scores)
        return ScoreCurve(np.asarray(scores, dtype=np.float64), np.arange(n, dtype=float), np.arange(1, n + 1.0),
                          "joint_va", None)

    t = np.linspace(0, 6, 30)
    [warning] = score_warnings(curve(1.0 + 1e-3 * (np.sin(t) + 1) / 2))
    assert "near-constant" in warning and "joint_va" in warning and "collapsed" in warning
    assert score_warnings(curve(np.sin(t))) == []
    [flat] = score_warnings(curve(np.full(30, 0.25)))  # exactly flat: the flat warning only, not both
    assert "are flat" in flat


def test_bench_saves_one_checkpoint_per_seed_and_split_and_reloads_to_the_same_numbers(tmp_path: Path):
    ds = _folder(tmp_path / "videos")
    plain = run_bench(tmp_path, ds, "test_ckpt_linear", [42, 123], out_dir=tmp_path / "plain")
    saved = run_bench(tmp_path, ds, "test_ckpt_linear", [42, 123], out_dir=tmp_path / "saved",
                      save_checkpoints=tmp_path / "ckpts", method_overrides={"amplitude": 2.0})
    again = run_bench(tmp_path, ds, "test_ckpt_linear", [42, 123], out_dir=tmp_path / "again",
                      method_overrides={"amplitude": 2.0})
    assert saved.per_seed == again.per_seed and plain.per_seed[42]["splits.json"]["collapsed_fraction"] == 0.0
    assert sorted(p.name for p in (tmp_path / "ckpts").iterdir()) == [
        "test_ckpt_linear_seed123_splits.json.safetensors", "test_ckpt_linear_seed42_splits.json.safetensors"]
    path = checkpoint_path(tmp_path / "ckpts", "test_ckpt_linear", 42, "splits.json")
    assert saved.extra["checkpoints"]["42"]["splits.json"] == str(path)
    info = read_checkpoint_info(path)
    card = info.model_card
    assert info.binding == {"visual": SOURCES["visual"]} and info.config["amplitude"] == 2.0
    assert (card["train_ids"], card["val_ids"], card["test_ids"]) == (["v0", "v1", "v2", "v3", "v4"], ["v5"],
                                                                      ["v5", "v6", "v7"])
    assert card["val_is_test"] and "optimistic" in card["recipe"]["selection"]
    metrics = {k: v for k, v in saved.per_seed[42]["splits.json"].items() if k != "collapsed_fraction"}
    assert card["test_metrics"] == pytest.approx(metrics) and card["seed"] == 42
    assert "--seed-values 42" in card["command"] and "--set amplitude=2.0" in card["command"]
    assert "--save-checkpoints" in card["command"]
    reloaded = run_bench(tmp_path, ds, None, [42], out_dir=tmp_path / "eval", checkpoint=path)
    assert reloaded.per_seed[42] == saved.per_seed[42] and reloaded.fit_reports == {}
    assert reloaded.config["method"] == "test_ckpt_linear"
    assert reloaded.config["checkpoint"]["test_videos_seen_in_training"] == {"42/splits.json": 1}
    assert "Evaluated checkpoint" in (tmp_path / "eval" / "results.md").read_text()


def test_bench_checkpoint_refuses_other_feature_sources_methods_and_overrides(tmp_path: Path):
    ds = _folder(tmp_path / "videos")
    run_bench(tmp_path, ds, "test_ckpt_linear", [42], out_dir=tmp_path / "r", save_checkpoints=tmp_path / "c")
    path = checkpoint_path(tmp_path / "c", "test_ckpt_linear", 42, "splits.json")
    other = _folder(tmp_path / "other", {"visual": FeatureSource("umt_i3d_rgb_flow", "umt-release", "dataset", 4)})
    with pytest.raises(CheckpointMismatchError) as refused:
        run_bench(tmp_path, other, None, [42], out_dir=tmp_path / "x", checkpoint=path)
    message = str(refused.value)
    assert "visual=synthetic_gaussian v1" in message and "visual=umt_i3d_rgb_flow vumt-release" in message
    assert "\n" not in message and refused.value.exit_code == 5
    with pytest.raises(ConfigError, match="holds method 'test_ckpt_linear'"):
        run_bench(tmp_path, ds, "random", [42], out_dir=tmp_path / "x", checkpoint=path)
    with pytest.raises(ConfigError, match="its own config"):
        run_bench(tmp_path, ds, None, [42], out_dir=tmp_path / "x", checkpoint=path, method_overrides={"offset": 1})
    with pytest.raises(ConfigError, match="needs --method"):
        run_bench(tmp_path, ds, None, [42], out_dir=tmp_path / "x")


def test_bench_reports_near_constant_runs_per_run(tmp_path: Path):
    ds = _folder(tmp_path / "videos")
    with pytest.warns(UserWarning, match="near-constant scores"):
        result = run_bench(tmp_path, ds, "test_ckpt_linear", [42, 123], out_dir=tmp_path / "z",
                           method_overrides={"offset": 1.0, "amplitude": 5e-4})  # span <= 1e-3 at scale 1
    assert all(runs["splits.json"]["collapsed_fraction"] == 1.0 for runs in result.per_seed.values())
    table = (tmp_path / "z" / "results.md").read_text()
    assert "collapsed predictions** in 2 of 2" in table and "seed 42 splits.json 100%" in table


def test_train_holds_out_validation_from_training_videos_and_never_reads_the_test_list(tmp_path: Path):
    ds = _folder(tmp_path / "videos", n=10)  # train v0-v4, val v5, test v5-v9
    assert training_pool(ds) == {"all": ["v0", "v1", "v2", "v3", "v4"]}  # v5 is val AND test: left out
    split = validation_split({"a": ["x1", "x2", "x3", "x4"], "b": ["y1"], "c": ["z1", "z2"]}, 0.25, seed=7)
    assert len(split.val_ids) == 2 and "y1" in split.train_ids  # one per group of >= 2; a single video trains
    assert split == validation_split({"a": ["x1", "x2", "x3", "x4"], "b": ["y1"], "c": ["z1", "z2"]}, 0.25, 7)
    report = train_checkpoint(tmp_path, ds, "test_ckpt_linear", tmp_path / "final.safetensors", seed=3,
                              val_fraction=0.4, method_overrides={"amplitude": 3.0})
    card = read_checkpoint_info(report.checkpoint).model_card
    test = {f"v{i}" for i in range(5, 10)}
    assert len(card["val_ids"]) == 2 and len(card["train_ids"]) == 3 and card["test_ids"] is None
    assert not (set(card["train_ids"]) | set(card["val_ids"])) & test
    assert sorted(card["train_ids"] + card["val_ids"]) == ["v0", "v1", "v2", "v3", "v4"]
    assert set(card["validation_metrics"]) == {"f1_top50", "map50", "map15", "rho", "tau"}
    assert card["seed"] == 3 and card["recipe"]["config"]["amplitude"] == 3.0 and "bench --checkpoint" in card[
        "test_metrics_note"]
    assert card["command"].startswith("avhighlights train ") and "--seed 3 --val-fraction 0.4" in card["command"]
    evaluated = run_bench(tmp_path, ds, None, [42], out_dir=tmp_path / "eval", checkpoint=report.checkpoint)
    assert evaluated.config["checkpoint"]["test_videos_seen_in_training"] == {"42/splits.json": 0}
    with pytest.raises(ConfigError, match="reference method"):
        train_checkpoint(tmp_path, ds, "random", tmp_path / "r.safetensors")


def test_fit_and_score_flag_near_constant_scores(tiny_videos, fit_store, tmp_path: Path, capsys):
    from avhighlights.cli.main import main
    from avhighlights.pipeline.fit import fit_on_videos

    healthy = fit_on_videos(tiny_videos[:2], "test_ckpt_unsupervised", tmp_path / "ok.safetensors", store=fit_store)
    assert healthy.near_constant_fraction == 0.0
    collapsed = fit_on_videos(tiny_videos[:2], "test_ckpt_unsupervised", tmp_path / "flat.safetensors",
                              method_overrides={"offset": 1.0, "amplitude": 5e-4}, store=fit_store)
    assert collapsed.near_constant_fraction == 1.0
    assert read_checkpoint_info(collapsed.checkpoint).training["near_constant_fraction"] == 1.0
    assert main(["fit", "--method", "test_ckpt_unsupervised", "--videos", str(tiny_videos[0]), "--set", "offset=1",
                 "--set", "amplitude=0.0005", "--store", fit_store, "--out", str(tmp_path / "f2.safetensors"),
                 "--progress", "none"]) == 0
    assert "near-constant scores on 100% of the training videos" in capsys.readouterr().err
    for name, expect in (("flat", True), ("ok", False)):
        out = tmp_path / f"out_{name}"
        assert main(["score", str(tiny_videos[2]), "--checkpoint", str(tmp_path / f"{name}.safetensors"), "--out",
                     str(out), "--no-clips", "--no-reel", "--export", "json", "--store", fit_store,
                     "--progress", "none"]) == 0
        said = capsys.readouterr()
        doc = json.loads(next(out.glob("*/highlights.json")).read_text())
        assert any("near-constant" in w for w in doc["warnings"]) is expect
        assert ("near-constant" in said.out + said.err) is expect


def test_a_seed_gives_the_same_numbers_every_run_network_initialisation_included(tmp_path: Path):
    """bench seeds the network's initial weights too (they are drawn when the method is built, before fit)."""
    ds = _folder(tmp_path / "videos")
    tiny = {"d_model": 8, "heads": 2, "fc_hidden": 4, "epochs": 1, "batch_size": 2}
    first = run_bench(tmp_path, ds, "joint_va", [42], out_dir=tmp_path / "a", method_overrides=tiny)
    torch.rand(3)  # whatever ran before in the process
    second = run_bench(tmp_path, ds, "joint_va", [42], out_dir=tmp_path / "b", method_overrides=tiny)
    assert first.per_seed == second.per_seed and first.fit_reports == second.fit_reports


TINY_JOINT_VA = ["--set", "d_model=16", "--set", "heads=2", "--set", "fc_hidden=8", "--set", "epochs=1"]


def _youtube_args(data_root: Path, *extra: str) -> list[str]:
    return ["--data-root", str(data_root), "--dataset", "youtube_highlights", "--domains", "parkour",
            "--progress", "none", *extra]


@pytest.mark.data
def test_youtube_checkpoints_reload_to_the_same_test_numbers_and_reach_the_raw_video_bridges(
        data_root: Path, tmp_path: Path, capsys, monkeypatch):
    from avhighlights.cli.main import main

    assert main(["bench", *_youtube_args(data_root, "--method", "joint_va", "--seed-values", "42", *TINY_JOINT_VA,
                                         "--out", str(tmp_path / "b"), "--save-checkpoints", str(tmp_path / "c"))]) == 0
    path = tmp_path / "c" / "joint_va_seed42_parkour.safetensors"
    info = read_checkpoint_info(path)
    assert {r: (s.name, s.kind, s.dim) for r, s in info.binding.items()} == {
        "visual": ("umt_i3d_rgb_flow", "dataset", 2048), "audio": ("umt_panns_cnn14", "dataset", 2048)}
    splits = json.loads((data_root / "youtube_highlights" / "splits.json").read_text())["parkour"]
    assert set(info.model_card["test_ids"]) <= set(splits["val"]) and set(info.model_card["train_ids"]) <= set(
        splits["train"])
    assert main(["bench", *_youtube_args(data_root, "--checkpoint", str(path), "--out", str(tmp_path / "e"))]) == 0
    trained, evaluated = (json.loads((tmp_path / d / "result.json").read_text()) for d in ("b", "e"))
    assert evaluated["per_seed"] == trained["per_seed"] and evaluated["config"]["method"] == "joint_va"
    assert info.model_card["test_metrics"]["map"] == trained["per_seed"]["42"]["parkour"]["map"]
    capsys.readouterr()
    clip = data_root / "media" / "his_girl_friday_speech_6s.mp4"
    monkeypatch.setenv("AVH_OFFLINE", "1")  # raw video goes through the bridge extractors (i3d, panns_cnn14_2s)
    monkeypatch.setenv("AVH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("AVH_WEIGHTS_DIR", raising=False)
    assert main(["score", str(clip), "--checkpoint", str(path), "--out", str(tmp_path / "s"), "--progress",
                 "none"]) == 4
    error = capsys.readouterr().err.strip()
    assert "rgb_imagenet.pt" in error and "weights files are missing:" in error  # the bridge's weights, not a refusal
    assert all(line.startswith("  - ") for line in error.splitlines()[1:])  # one missing file per line
    assert not (tmp_path / "s").exists()


@pytest.mark.data
def test_youtube_train_card_keeps_validation_and_training_apart_from_the_test_list(data_root: Path, tmp_path: Path,
                                                                                    capsys):
    from avhighlights.cli.main import main

    out = tmp_path / "parkour.safetensors"
    assert main(["train", *_youtube_args(data_root, "--method", "joint_va", *TINY_JOINT_VA, "--out", str(out))]) == 0
    assert "test numbers: avhighlights bench --checkpoint" in capsys.readouterr().out
    card = read_checkpoint_info(out).model_card
    splits = json.loads((data_root / "youtube_highlights" / "splits.json").read_text())["parkour"]
    train, val = set(card["train_ids"]), set(card["val_ids"])
    assert not (train | val) & set(splits["val"]) and not train & val
    assert len(val) == 3 and len(train | val) == 19  # 19 parkour training videos have features; 15 % held out
    assert set(card["validation_metrics"]) == {"map"} and card["test_ids"] is None and card["dataset"] == (
        "youtube_highlights")
    assert card["command"].startswith("avhighlights train --data-root") and "--domains parkour" in card["command"]


@pytest.mark.data
def test_bench_checkpoint_on_other_feature_sources_exits_5_naming_both(data_root: Path, tmp_path: Path, capsys):
    from avhighlights.cli.main import main

    ds = _folder(tmp_path / "videos")
    run_bench(tmp_path, ds, "test_ckpt_linear", [42], out_dir=tmp_path / "r", save_checkpoints=tmp_path / "c")
    path = checkpoint_path(tmp_path / "c", "test_ckpt_linear", 42, "splits.json")
    capsys.readouterr()
    assert main(["bench", *_youtube_args(data_root, "--checkpoint", str(path), "--out", str(tmp_path / "x"))]) == 5
    error = capsys.readouterr().err
    assert "visual=synthetic_gaussian v1" in error and "visual=umt_i3d_rgb_flow vumt-release" in error
    assert not (tmp_path / "x").exists()
