"""Training for the model zoo: fp16 checkpoints, the `general` dataset (TVSum + YouTube Highlights) and its
protocol, `train --exclude-domains` (leave-one-domain-out), the rgb-only dataset source `umt_i3d_rgb`, and the LODO
report of bench/zoo_lodo.py. The data-marked tests read the shared UMT features and skip without them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from avhighlights.core.errors import ConfigError
from avhighlights.core.sample import FeatureSource, Sample
from avhighlights.evaluation.general_data import GeneralDataset, GeneralProtocol
from avhighlights.models.base import create_method
from avhighlights.models.checkpoint import load_checkpoint, read_checkpoint_info, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY = {"d_model": 16, "heads": 2, "fc_hidden": 8, "epochs": 1}
TINY_ARGS = [arg for k, v in TINY.items() for arg in ("--set", f"{k}={v}")]
BINDING = {"visual": FeatureSource("synthetic", "1", "dataset", 6), "audio": FeatureSource("synthetic_a", "1",
                                                                                           "dataset", 5)}


def _sample(video_id: str, n: int, rng: np.random.Generator) -> Sample:
    feats = {"visual": rng.normal(size=(n, 6)).astype(np.float32), "audio": rng.normal(size=(n, 5)).astype(np.float32)}
    return Sample(video_id, feats, 1.0, (rng.random(n) > 0.5).astype(np.float32), "g", {})


def test_fp16_checkpoint_halves_the_file_and_loads_back_as_the_methods_float32(tmp_path: Path):
    import avhighlights.models  # noqa: F401  (registration)

    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    method = create_method("joint_va", {"visual": 6, "audio": 5}, TINY)
    full = save_checkpoint(method, tmp_path / "full.safetensors", BINDING)
    half = save_checkpoint(method, tmp_path / "half.safetensors", BINDING, dtype=torch.float16)
    with safe_open(str(half), framework="pt") as handle:
        assert {handle.get_tensor(k).dtype for k in handle.keys()} == {torch.float16}
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded, _ = load_checkpoint(half)
    assert {p.dtype for p in loaded.module.parameters()} == {torch.float32}
    rounded = {k: v.half().float() for k, v in method.state_dict().items()}
    assert all(torch.equal(loaded.state_dict()[k], rounded[k]) for k in rounded)
    sample = _sample("v", 30, rng)
    method.load_state_dict(rounded)
    np.testing.assert_array_equal(loaded.predict(sample), method.predict(sample))


def test_general_protocol_scores_each_part_with_its_own_metric_and_nan_for_the_absent_part():
    rng = np.random.default_rng(1)
    tvsum = Sample("t", {}, 2.0, None, "BK", {"annotations": rng.integers(1, 6, size=(20, 20)).astype(np.float32)})
    match = np.r_[np.ones(5), -np.ones(15)].astype(np.float32)
    youtube = Sample("y", {}, 2.0, None, "dog", {"match": match})
    perfect, preds = match.copy(), rng.random(20)
    mixed = GeneralProtocol().evaluate([tvsum, youtube], [preds, perfect])
    assert mixed["map"] == pytest.approx(1.0) and 0.0 <= mixed["top5_map_umt"] <= 1.0
    only_youtube = GeneralProtocol().evaluate([youtube], [perfect])
    assert np.isnan(only_youtube["top5_map_umt"]) and only_youtube["map"] == pytest.approx(1.0)


def test_lodo_report_puts_feature_norm_and_random_beside_the_model(tmp_path: Path):
    spec = importlib.util.spec_from_file_location("zoo_lodo", ROOT / "bench" / "zoo_lodo.py")
    lodo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lodo)
    parts = tmp_path / "parts"
    parts.mkdir()
    for i, domain in enumerate(lodo.DOMAINS):
        for seed in (42, 123):
            results = {name: {vset: {"map": value + 0.01 * i, "n_videos": 3} for vset in lodo.VIDEO_SETS}
                       for name, value in (("joint_va", 0.7), ("feature_norm", 0.6), ("random", 0.5))}
            part = {"variant": "joint_va", "domain": domain, "seed": seed, "results": results, "n_train": 10,
                    "n_val": 2, "selected_epoch": 3, "train_seconds": 5.0, "seen_test_videos": 0, "epochs": 40,
                    "torch_threads": 1, "command": "avhighlights train ..."}
            (parts / f"joint_va_{domain}_seed{seed}.json").write_text(json.dumps(part))
    data = lodo.report(tmp_path)
    means = data["mean_of_domains_per_seed"]["joint_va"]
    assert means["joint_va"]["test"] == pytest.approx([0.715, 0.715])
    assert means["feature_norm"]["all"] == pytest.approx([0.615, 0.615]) and len(means["random"]["test"]) == 2
    table = (tmp_path / "lodo.md").read_text()
    assert "| joint_va | feature_norm | random |" in table and "71.50 ± 0.00 (n=2)" in table


@pytest.mark.data
def test_general_dataset_joins_tvsum_categories_and_youtube_domains(data_root: Path):
    ds = GeneralDataset(data_root, ["BK", "parkour"])
    assert [s.group for s in ds.splits()] == ["BK", "parkour"] and ds.name == "general"
    tvsum_ids = json.loads((data_root / "tvsum" / "tvsum_anno.json").read_text())
    assert {v in tvsum_ids for v in ds.video_ids()} == {True, False}
    assert set(ds.label_meta_keys) == {"annotations", "frame_annotations", "match"}
    with pytest.raises(ConfigError, match="unknown domains \\['surfing'\\]"):
        GeneralDataset(data_root, ["surfing"])


@pytest.mark.data
def test_rgb_source_reads_the_rgb_stream_only(data_root: Path):
    ds = GeneralDataset(data_root, ["parkour"], {"visual": "umt_i3d_rgb"})
    video = ds.video_ids()[0]
    with np.load(data_root / "youtube_highlights" / "features" / f"{video}.npz") as npz:
        rgb = npz["rgb"].astype(np.float32)
    visual = ds.sample(video).features["visual"]
    assert visual.shape[1] == 1024 and np.array_equal(visual, rgb[:len(visual)])
    assert (ds.feature_sources["visual"].name, ds.feature_sources["visual"].dim) == ("umt_i3d_rgb", 1024)
    with pytest.raises(ConfigError, match="umt_i3d_rgb_flow"):
        GeneralDataset(data_root, ["parkour"], {"visual": "i3d_flow_only"})


@pytest.mark.data
def test_leave_one_out_training_on_general_never_sees_the_left_out_domain_or_a_test_video(data_root: Path,
                                                                                         tmp_path: Path, capsys):
    from avhighlights.cli.main import main

    out = tmp_path / "lodo.safetensors"
    args = ["--data-root", str(data_root), "--dataset", "general", "--progress", "none"]
    assert main(["train", *args, "--domains", "BK", "GA", "parkour", "--exclude-domains", "GA", "--method",
                 "joint_va", "--source", "visual=umt_i3d_rgb", "--dtype", "float16", *TINY_ARGS,
                 "--out", str(out)]) == 0
    info = read_checkpoint_info(out)
    card = info.model_card
    assert card["domains"] == ["BK", "parkour"] and card["excluded_domains"] == ["GA"]
    assert card["weights_dtype"] == "float16" and info.binding["visual"].name == "umt_i3d_rgb"
    assert "--exclude-domains GA" in card["command"] and "--source visual=umt_i3d_rgb" in card["command"]
    ds = GeneralDataset(data_root)
    groups = {v: ds.sample(v).group for v in card["train_ids"] + card["val_ids"]}
    assert set(groups.values()) == {"BK", "parkour"}
    tested = {v for split in ds.splits() for v in split.test_ids}
    assert not set(groups) & tested and set(card["validation_metrics"]) == {"top5_map_umt", "map"}
    capsys.readouterr()
    # bench --checkpoint picks the checkpoint's rgb-only source by itself; a flow-reading dataset is refused
    assert main(["bench", *args, "--domains", "parkour", "--checkpoint", str(out), "--out", str(tmp_path / "b")]) == 0
    result = json.loads((tmp_path / "b" / "result.json").read_text())
    assert result["config"]["feature_sources"]["visual"]["name"] == "umt_i3d_rgb"
    assert main(["bench", *args, "--domains", "parkour", "--checkpoint", str(out), "--source",
                 "visual=umt_i3d_rgb_flow", "--out", str(tmp_path / "x")]) == 5
    assert "umt_i3d_rgb vumt-release" in capsys.readouterr().err
