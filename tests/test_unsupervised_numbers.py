"""bench/unsupervised_numbers.py: cells read from bench result folders (seeds of several one-seed folders joined,
population std, per-domain values of both YouTube layouts, collapsed fits counted) and the done-when margins
(paired by seed on tvsum_random80, against the reference's mean elsewhere)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def numbers():
    spec = importlib.util.spec_from_file_location("unsupervised_numbers", ROOT / "bench" / "unsupervised_numbers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve the module's annotations through sys.modules
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def _write(root: Path, folder: str, per_seed: dict, fit_reports: dict | None = None) -> None:
    (root / folder).mkdir(parents=True)
    (root / folder / "result.json").write_text(json.dumps({"per_seed": per_seed, "fit_reports": fit_reports or {}}))


def test_one_seed_folders_join_and_cross_dataset_domains_are_read(numbers, tmp_path):
    maps = {42: (0.60, 0.50, 0.70, 0.40), 123: (0.64, 0.54, 0.74, 0.44)}
    for seed, (dog, gym, par, ska) in maps.items():
        group = {"map": np.mean([dog, gym, par, ska]), "map_dog": dog, "map_gymnastics": gym, "map_parkour": par,
                 "map_skating": ska, "collapsed_fraction": 0.0}
        report = {"tvsum_to_youtube": {"near_constant_on_train": 0.9 if seed == 123 else 0.0}}
        _write(tmp_path, f"x-seed{seed}", {str(seed): {"tvsum_to_youtube": group}}, {str(seed): report})
    scores = numbers.read_cell(tmp_path, ["x-seed42", "x-seed123"], numbers.COLUMNS["t2y"])
    assert scores.value == pytest.approx({42: 55.0, 123: 59.0})
    assert scores.domains["dog"] == pytest.approx({42: 60.0, 123: 64.0})
    assert (scores.collapsed_fits, scores.fits) == (1, 2)  # seed 123 near-constant on 90 % of its training videos
    text = numbers.cell_text(scores, ["x-seed42", "x-seed123"])
    assert text.startswith("57.00 +- 2.00 (2 seeds); dog 62.00, gym 52.00, par 72.00, ska 42.00; collapsed 1/2")
    assert "`x-seed*`" in text
    with pytest.raises(ValueError, match="seed 42"):
        numbers.read_cell(tmp_path, ["x-seed42", "x-seed42"], numbers.COLUMNS["t2y"])


def test_per_domain_groups_average_to_the_four_domain_mean(numbers, tmp_path):
    groups = {d: {"map": v, "collapsed_fraction": 0.75 if d == "dog" else 0.0}
              for d, v in zip(numbers.DOMAINS, (0.4, 0.6, 0.5, 0.3), strict=True)}
    _write(tmp_path, "yt", {"42": groups})
    scores = numbers.read_cell(tmp_path, ["yt"], numbers.COLUMNS["youtube"])
    assert scores.value == pytest.approx({42: 45.0})
    assert scores.domains["gymnastics"] == pytest.approx({42: 60.0})
    assert (scores.collapsed_fits, scores.fits) == (1, 4)
    assert numbers.read_cell(tmp_path, ["missing"], numbers.COLUMNS["youtube"]) is None
    assert numbers.read_cell(tmp_path, ["yt", "missing"], numbers.COLUMNS["youtube"]).value == pytest.approx({42: 45.0})


def test_margins_paired_by_seed_or_against_the_reference_mean(numbers):
    ours, reference = {1: 50.0, 2: 40.0}, {1: 45.0, 2: 41.0}
    assert numbers.margins(ours, reference, paired=True) == pytest.approx((2.0, -1.0, 2))
    assert numbers.margins(ours, reference, paired=False) == pytest.approx((2.0, -3.0, 2))
