"""The bench harness end to end (shared YouTube data and a generated labelled folder) and the
reference baselines `random` and `loudness`."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from avhighlights.cli.bench import add_bench_arguments, bench_main
from avhighlights.core.errors import ConfigError, DatasetError
from avhighlights.core.overrides import parse_overrides
from avhighlights.core.sample import Sample
from avhighlights.core.timebase import FeatureTrack, Spans
from avhighlights.evaluation.bench import (
    collapsed_fraction,
    run_bench,
    seed_list,
)
from avhighlights.evaluation.bench_merge import merge_results
from avhighlights.evaluation.folder_data import FolderDataset
from avhighlights.evaluation.report import training_note
from avhighlights.models import baselines  # noqa: F401  (registers `random` and `loudness`)
from avhighlights.models.base import METHODS, HighlightMethod, create_method


def test_seed_list_takes_the_fixed_seeds_first():
    assert seed_list(3) == [42, 123, 456]
    assert seed_list(7) == [42, 123, 456, 777, 999, 1005, 1006]
    with pytest.raises(ConfigError):
        seed_list(0)


def test_random_baseline_is_deterministic_per_seed_and_video():
    method = create_method("random", {}, {"seed": 42})
    sample = Sample("vid", {}, 1.0, meta={"n_steps": 6})
    first = method.predict(sample)
    assert first.shape == (6,) and np.array_equal(first, method.predict(sample))
    assert not np.array_equal(first, method.predict(Sample("other", {}, 1.0, meta={"n_steps": 6})))
    assert not np.array_equal(first, create_method("random", {}, {"seed": 7}).predict(sample))


def _loudness_features(n: int, loud_step: int) -> np.ndarray:
    feats = np.zeros((n, 3), dtype=np.float32)  # [rms_dbfs, peak_dbfs, spectral_flux]
    feats[:, 0], feats[:, 1] = -30.0, -20.0
    feats[loud_step] = [-5.0, -1.0, 1.0]
    return feats


def test_loudness_baseline_by_hand():
    method = create_method("loudness", {"loudness": 3})
    scores = method.predict(Sample("v", {"loudness": _loudness_features(20, 11)}, 1.0))
    # one spike among 20 values z-scores to sqrt(19), the rest to -1/sqrt(19); flux adds 0.5 * sqrt(19)
    expected = np.full(20, -1 / np.sqrt(19))
    expected[11] = 1.5 * np.sqrt(19)
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    steady = np.tile([[-5.0, -1.0, 0.0]], (10, 1)).astype(np.float32)
    assert np.all(method.predict(Sample("v", {"loudness": steady}, 1.0)) == 0)
    with pytest.raises(ConfigError, match="dim 1"):
        create_method("loudness", {"loudness": 1})


def test_bench_youtube_random_writes_reproducible_results(data_root: Path, tmp_path: Path):
    result = run_bench(data_root, "youtube_highlights", "random", 2, domains=["dog", "parkour"], out_dir=tmp_path)
    again = run_bench(data_root, "youtube_highlights", "random", 2, domains=["dog", "parkour"],
                      out_dir=tmp_path / "again")
    assert result.per_seed == again.per_seed and result.seeds == [42, 123]
    data = json.loads((tmp_path / "result.json").read_text())
    assert data["config"]["protocol"] == "per_domain" and data["config"]["feature_sources"]["visual"]["dim"] == 2048
    assert [s["name"] for s in data["splits"]["42"]] == ["dog", "parkour"]
    assert len(data["splits"]["42"][0]["test"]) == 17 and data["extra"]["unavailable_ids"]["dog"]
    per_seed_means = [np.mean([runs[g]["map"] for g in runs]) for runs in result.per_seed.values()]
    assert data["summary"]["overall"]["map"]["mean"] == pytest.approx(np.mean(per_seed_means))
    assert data["summary"]["overall"]["map"]["std"] == pytest.approx(np.std(per_seed_means))
    table = (tmp_path / "results.md").read_text()
    assert "mAP (YouTube, AP-trap all clips)" in table and "| dog |" in table and "±" in table


@dataclass(frozen=True)
class _ProbeConfig:
    scale: float = 1.0


class _ProbeBase(HighlightMethod):
    """A real (tiny) trainable method: score = features . (mean training feature); it logs what
    `fit` was given so the test can check label stripping."""

    Config = _ProbeConfig
    roles = ("visual",)
    fit_log: list = []

    def fit(self, train, val=None, seed=0, progress=None):
        type(self).fit_log.append([(s.labels is not None, sorted(s.meta)) for s in train])
        self.weights = np.mean([s.features["visual"].mean(axis=0) for s in train], axis=0)  # (D,)
        return {"n_train": len(train), "best_epoch": 0}

    def predict(self, sample: Sample) -> np.ndarray:
        assert sample.labels is None  # bench never shows test labels to predict
        return self.config.scale * sample.features["visual"] @ self.weights


@METHODS.register("test_bench_unsupervised_probe")
class _UnsupervisedProbe(_ProbeBase):
    supervised = False
    fit_log: list = []


@METHODS.register("test_bench_supervised_probe")
class _SupervisedProbe(_ProbeBase):
    supervised = True
    fit_log: list = []


def _folder(tmp_path: Path) -> FolderDataset:
    rng = np.random.default_rng(0)
    tmp_path.mkdir()
    for i in range(4):
        (tmp_path / f"v{i}.mp4").write_bytes(b"")
        (tmp_path / f"v{i}.labels.json").write_text(json.dumps({"scores": rng.random(12).round(3).tolist()}))
    (tmp_path / "splits.json").write_text(json.dumps({"train": ["v0", "v1"], "val": ["v2"], "test": ["v2", "v3"]}))

    def features_for(video: Path) -> dict[str, FeatureTrack]:
        values = np.random.default_rng(int(video.stem[1:])).normal(size=(24, 4)).astype(np.float32)
        return {"visual": FeatureTrack(values, Spans.regular(24, 0.5))}

    return FolderDataset(tmp_path, features_for)


def test_bench_strips_labels_for_unsupervised_methods_only(tmp_path: Path):
    ds = _folder(tmp_path / "videos")
    unsup = run_bench(tmp_path, ds, "test_bench_unsupervised_probe", 1, out_dir=tmp_path / "u")
    run_bench(tmp_path, ds, "test_bench_supervised_probe", 1, out_dir=tmp_path / "s",
              method_overrides={"scale": 2.0})
    assert _UnsupervisedProbe.fit_log[-1] == [(False, ["duration_s", "n_steps", "path"])] * 2
    assert all(has_labels for has_labels, _ in _SupervisedProbe.fit_log[-1])
    metrics = unsup.per_seed[42]["splits.json"]
    assert set(metrics) == {"f1_top50", "map50", "map15", "rho", "tau", "collapsed_fraction"}
    assert 0 <= metrics["f1_top50"] <= 1 and metrics["collapsed_fraction"] == 0.0
    assert json.loads((tmp_path / "s" / "result.json").read_text())["config"]["method_overrides"] == {"scale": 2.0}


def test_bench_refuses_mismatched_protocol_and_missing_roles(tmp_path: Path, data_root: Path):
    with pytest.raises(ConfigError, match="is for dataset 'tvsum'"):
        run_bench(data_root, "youtube_highlights", "random", 1, protocol="umt_top5", out_dir=tmp_path)
    with pytest.raises(ConfigError, match="reads roles \\['loudness'\\]"):
        run_bench(data_root, "youtube_highlights", "loudness", 1, domains=["parkour"], out_dir=tmp_path)


def test_bench_cli_arguments(tmp_path: Path, data_root: Path, capsys):
    parser = argparse.ArgumentParser()
    add_bench_arguments(parser)
    args = parser.parse_args(["--data-root", str(data_root), "--dataset", "youtube_highlights", "--method",
                              "random", "--seeds", "1", "--domains", "skating", "--out", str(tmp_path),
                              "--progress", "none"])
    assert bench_main(args) == 0
    assert "skating" in capsys.readouterr().out and (tmp_path / "results.md").is_file()
    assert parse_overrides(["lr=1e-4", "name=x", "dims=[1, 2]"]) == {"lr": 1e-4, "name": "x", "dims": [1, 2]}
    with pytest.raises(ConfigError):
        parse_overrides(["novalue"])


def _write_mrhisum(root: Path, n_videos: int) -> None:
    """A small `mr_hisum.h5` with the official per-video keys, plus metadata.csv and the split."""
    import h5py

    root.mkdir(parents=True)
    rng = np.random.default_rng(3)
    ids = [f"video_{i}" for i in range(n_videos)]
    with h5py.File(root / "mr_hisum.h5", "w") as h5:
        for vid in ids:
            n = int(rng.integers(20, 40))
            group = h5.create_group(vid)
            group["features"] = rng.normal(size=(n, 1024)).astype(np.float32)
            group["gtscore"] = rng.random(n).astype(np.float32)
            cuts = np.r_[0, np.sort(rng.choice(np.arange(1, n), 3, replace=False)), n]
            group["change_points"] = np.stack([cuts[:-1], cuts[1:] - 1], axis=1)
            group["gt_summary"] = (rng.random(n) < 0.15).astype(np.float32)
    (root / "metadata.csv").write_text("video_id,youtube_id\n" + "".join(f"{v},yt{v}\n" for v in ids))
    split = {"train_keys": ids[:2], "val_keys": ids[2:3], "test_keys": ids[3:]}
    (root / "mr_hisum_split.json").write_text(json.dumps(split))


def test_bench_mrhisum_official_on_a_generated_h5(tmp_path: Path):
    _write_mrhisum(tmp_path / "mrhisum", 6)
    result = run_bench(tmp_path, "mrhisum", "random", 2, out_dir=tmp_path / "out")
    assert result.config["protocol"] == "mrhisum_official" and result.splits["42"][0]["test"] == [
        "video_3", "video_4", "video_5"]
    for runs in result.per_seed.values():
        assert set(runs["official"]) == {"f1_knapsack15", "map50", "map15", "collapsed_fraction"}
        assert all(0 <= v <= 1 for v in runs["official"].values())
    assert "F1 knapsack-15 % (Mr.HiSum)" in (tmp_path / "out" / "results.md").read_text()


def test_bench_flags_collapsed_predictions(tmp_path: Path):
    """A model that outputs constant scores is named as collapsed in result.json, results.md and a warning."""
    assert collapsed_fraction([np.zeros(5), np.arange(5.0), np.full(3, 0.7), np.ones(1)]) == pytest.approx(2 / 3)
    ds = _folder(tmp_path / "videos")
    with pytest.warns(UserWarning, match="constant scores"):
        run_bench(tmp_path, ds, "test_bench_supervised_probe", 1, out_dir=tmp_path / "z",
                  method_overrides={"scale": 0.0})
    result = json.loads((tmp_path / "z" / "result.json").read_text())
    assert result["per_seed"]["42"]["splits.json"]["collapsed_fraction"] == 1.0
    assert "collapsed predictions" in (tmp_path / "z" / "results.md").read_text()


def test_feature_norm_baseline_by_hand():
    method = create_method("feature_norm", {"visual": 2})
    sample = Sample("v", {"visual": np.array([[3.0, 4.0], [0.0, 1.0], [6.0, 8.0]], dtype=np.float32)}, 1.0)
    np.testing.assert_allclose(method.predict(sample), [5.0, 1.0, 10.0])
    flipped = create_method("feature_norm", {"audio": 2}, {"sign": -1.0, "role": "audio"})
    np.testing.assert_allclose(flipped.predict(Sample("v", {"audio": sample.features["visual"]}, 1.0)), [-5, -1, -10])
    with pytest.raises(ConfigError, match="sign"):
        create_method("feature_norm", {"visual": 2}, {"sign": 0.5})


def _table_rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("|")]


def test_bench_merge_of_seed_parts_equals_one_run(tmp_path: Path):
    """Seeds run apart (`--seed-values`) and merged give the numbers and table of one `--seeds 3` run."""
    ds = _folder(tmp_path / "videos")
    whole = run_bench(tmp_path, ds, "random", 3, out_dir=tmp_path / "whole")
    run_bench(tmp_path, ds, "random", [42, 123], out_dir=tmp_path / "a")
    run_bench(tmp_path, ds, "random", [456], out_dir=tmp_path / "b")
    merged = merge_results([tmp_path / "a", tmp_path / "b" / "result.json"], tmp_path / "m")
    assert merged.seeds == [42, 123, 456] and merged.per_seed == whole.per_seed
    assert merged.summary == whole.summary and merged.splits == whole.splits
    assert whole.summary["overall"]["f1_top50"]["std"] > 0  # the seeds really differ
    assert _table_rows(merged.markdown_path.read_text()) == _table_rows(whole.markdown_path.read_text())
    assert "bench-merge` from 2 runs (seeds 42, 123; 456)" in merged.markdown_path.read_text()
    saved = json.loads((tmp_path / "m" / "result.json").read_text())
    assert [p["seeds"] for p in saved["extra"]["merged_from"]] == [[42, 123], [456]]


def test_bench_merge_refuses_other_experiments_and_repeated_seeds(tmp_path: Path):
    ds = _folder(tmp_path / "videos")
    run_bench(tmp_path, ds, "test_bench_supervised_probe", [42], out_dir=tmp_path / "a")
    run_bench(tmp_path, ds, "test_bench_supervised_probe", [123], out_dir=tmp_path / "b",
              method_overrides={"scale": 2.0})
    run_bench(tmp_path, ds, "test_bench_supervised_probe", [42], out_dir=tmp_path / "c")
    with pytest.raises(ConfigError, match="b/result.json: method_overrides"):
        merge_results([tmp_path / "a", tmp_path / "b"], tmp_path / "m")
    with pytest.raises(ConfigError, match="seed 42 is in both"):
        merge_results([tmp_path / "a", tmp_path / "c"], tmp_path / "m")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(DatasetError, match="bad.json: not valid JSON"):
        merge_results([tmp_path / "a", tmp_path / "bad.json"], tmp_path / "m")
    with pytest.raises(DatasetError, match="nowhere: no bench result here"):
        merge_results([tmp_path / "a", tmp_path / "nowhere"], tmp_path / "m")
    assert not (tmp_path / "m").exists()  # nothing written on a refusal


def test_training_note_is_left_out_for_untrained_fits():
    untrained = {"fit_reports": {"42": {"fold0": {"best_epoch": -1}, "fold1": {"best_epoch": -1}}}}
    assert training_note(untrained) == []
    mixed = {"fit_reports": {"42": {"fold0": {"best_epoch": -1}, "fold1": {"best_epoch": 3}}}}
    assert "over 1 (seed, split) runs: min 3, median 3, max 3" in training_note(mixed)[1]


def test_bench_records_every_fit_report_and_cli_seed_values(tmp_path: Path, capsys):
    ds = _folder(tmp_path / "videos")
    result = run_bench(tmp_path, ds, "test_bench_supervised_probe", [7, 8], out_dir=tmp_path / "s")
    assert result.fit_reports == {"7": {"splits.json": {"n_train": 2, "best_epoch": 0}},
                                  "8": {"splits.json": {"n_train": 2, "best_epoch": 0}}}
    assert "Selected epoch (0-based, by validation) over 2 (seed, split) runs" in result.markdown_path.read_text()
    parser = argparse.ArgumentParser()
    add_bench_arguments(parser)
    args = parser.parse_args(["--data-root", "x", "--dataset", "d", "--method", "m", "--seed-values", "5", "9"])
    assert args.seed_values == [5, 9]
    from avhighlights.cli.main import main

    run_bench(tmp_path, ds, "test_bench_supervised_probe", [9], out_dir=tmp_path / "t")
    assert main(["bench-merge", str(tmp_path / "s"), str(tmp_path / "t"), "--out", str(tmp_path / "st")]) == 0
    assert "over 3 seeds [7, 8, 9]" in capsys.readouterr().out
    assert main(["bench-merge", str(tmp_path / "s"), str(tmp_path / "s"), "--out", str(tmp_path / "x")]) == 2
