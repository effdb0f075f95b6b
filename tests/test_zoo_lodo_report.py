"""The leave-one-domain-out report of bench/zoo_lodo.py (mean ± sample std over seeds, the paired comparison with
feature_norm on the same videos) and how bench/zoo_build.py carries it onto the zoo cards and index.json."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from avhighlights.models.checkpoint import read_checkpoint_info

ROOT = Path(__file__).resolve().parents[1]
# domain -> seed -> (model mAP, feature_norm mAP); seed 777 is missing from skating
MAPS = {"dog": {42: (0.62, 0.60), 123: (0.59, 0.60), 777: (0.64, 0.60)},
        "gymnastics": {42: (0.66, 0.70), 123: (0.65, 0.70), 777: (0.72, 0.70)},
        "parkour": {42: (0.70, 0.58), 123: (0.69, 0.58), 777: (0.68, 0.58)},
        "skating": {42: (0.70, 0.64), 123: (0.71, 0.64)}}


def _bench_module(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_parts(out: Path, lodo) -> None:
    (out / "parts").mkdir(parents=True)
    for domain, seeds in MAPS.items():
        for seed, (model, floor) in seeds.items():
            results = {name: {vset: {"map": value, "n_videos": 4} for vset in lodo.VIDEO_SETS}
                       for name, value in (("joint_va", model), ("feature_norm", floor), ("random", 0.4))}
            part = {"variant": "joint_va+epochs=10", "method": "joint_va", "domain": domain, "seed": seed,
                    "results": results, "n_train": 10, "n_val": 2, "selected_epoch": 3, "train_seconds": 5.0,
                    "seen_test_videos": 0, "epochs": 10, "torch_threads": 1, "command": "avhighlights train ..."}
            (out / "parts" / f"joint_va_{domain}_seed{seed}.json").write_text(json.dumps(part))


def test_paired_comparison_is_per_seed_on_the_same_videos(tmp_path: Path):
    lodo = _bench_module("zoo_lodo")
    _write_parts(tmp_path, lodo)
    data = lodo.report(tmp_path)
    paired = data["paired_vs_feature_norm"]["joint_va+epochs=10"]["test"]
    dog = paired["dog"]
    assert dog["per_seed"] == pytest.approx({"42": 0.02, "123": -0.01, "777": 0.04})
    assert dog["seeds_above"] == 2 and dog["n"] == 3
    assert dog["std"] == pytest.approx(float(np.std([0.02, -0.01, 0.04], ddof=1)))
    assert paired["skating"]["n"] == 2
    # the mean of 4 domains only over the seeds every domain has (777 lacks skating)
    both = paired["mean of 4 domains"]
    assert list(both["per_seed"]) == ["42", "123"]
    assert both["per_seed"]["42"] == pytest.approx(np.mean([0.02, -0.04, 0.12, 0.06]))
    table = (tmp_path / "lodo.md").read_text()
    assert "| dog | test | 42: +2.00, 123: -1.00, 777: +4.00 | +1.67 ± 2.52 (n=3) | 2 of 3 |" in table
    assert "| gymnastics | test | 42: -4.00, 123: -5.00, 777: +2.00 | -2.33 ± 3.79 (n=3) | 1 of 3 |" in table
    assert "| **mean of 4 domains** | test | 66.50 ± 0.71 (n=2) | 63.00 ± 0.00 (n=2) |" in table
    assert "videos per held-out domain (test / all): dog 4 / 4" in table


def test_cards_carry_the_lodo_spread_and_floor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    lodo, build = _bench_module("zoo_lodo"), _bench_module("zoo_build")
    _write_parts(tmp_path, lodo)
    lodo.report(tmp_path)
    monkeypatch.setattr(build, "LODO_JSON", tmp_path / "lodo.json")
    numbers = build.lodo_numbers("joint_va+epochs=10")
    per_seed = [np.mean([MAPS[d][s][0] for d in MAPS]) for s in (42, 123)]
    assert numbers["youtube_lodo_test_mean"] == pytest.approx(np.mean(per_seed))
    assert numbers["youtube_lodo_test_std"] == pytest.approx(float(np.std(per_seed, ddof=1)))
    assert numbers["feature_norm_lodo_test_mean"] == pytest.approx(0.63)
    assert numbers["paired_vs_feature_norm"]["all"]["dog"]["seeds_above"] == 2
    index = build.lodo_index_numbers(numbers)
    assert index["lodo_seeds"] == 2 and index["lodo_youtube_std"] == numbers["youtube_lodo_test_std"]
    assert build.lodo_index_numbers(None) == dict.fromkeys(index)
    assert build.lodo_numbers("hpcl") is None


def test_shipped_cards_and_index_hold_the_shipped_lodo_table():
    index_path = ROOT / "avhighlights" / "zoo" / "index.json"
    lodo_path = ROOT / "bench" / "results" / "zoo_lodo" / "lodo.json"
    if not (index_path.is_file() and lodo_path.is_file()):
        pytest.skip("no zoo index or LODO table yet")
    lodo = json.loads(lodo_path.read_text())
    for entry in json.loads(index_path.read_text())["models"]:
        card = read_checkpoint_info(index_path.parent / entry["file"]).model_card
        if card.get("lodo") is None:
            assert entry["numbers"].get("lodo_youtube_mean") is None
            continue
        variant = card["lodo"]["runs"][0]["variant"]
        means = lodo["mean_of_domains_per_seed"][variant]
        model = next(n for n in means if n not in ("feature_norm", "random"))
        assert card["lodo"]["per_domain_per_seed"] == lodo["table"][variant]
        assert entry["numbers"]["lodo_youtube_mean"] == pytest.approx(np.mean(means[model]["test"]))
        assert entry["numbers"]["lodo_feature_norm_mean"] == pytest.approx(np.mean(means["feature_norm"]["test"]))
        assert entry["numbers"]["lodo_seeds"] == len(means[model]["test"])
        assert card["lodo"]["youtube_lodo_test_mean"] == entry["numbers"]["lodo_youtube_mean"]
