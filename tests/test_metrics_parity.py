"""Metric parity on the real shared annotations: the package's TVSum top-5 mAP (UMT) and YouTube
mAP of fixed seeded-random predictions equal an independent, straightforward implementation
written here with plain loops (no shared code), also through the `bench` harness."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from avhighlights.evaluation.bench import run_bench
from avhighlights.evaluation.highlight_metrics import (
    tvsum_dataset_map,
    tvsum_top5_map_umt,
    youtube_map,
    youtube_video_ap,
)
from avhighlights.models import baselines  # noqa: F401  (registers `random`)


def _trapezoid_ap(labels: list[int]) -> float:
    positives = sum(labels)
    if positives == 0:
        return 0.0
    ap, hits, prev_recall, prev_precision = 0.0, 0, 0.0, 1.0
    for j, label in enumerate(labels, start=1):
        hits += label
        recall, precision = hits / positives, hits / j
        ap += (recall - prev_recall) * (prev_precision + precision) / 2
        prev_recall, prev_precision = recall, precision
    return ap


def _ranked(pred: list[float]) -> list[int]:
    return sorted(range(len(pred)), key=lambda i: -pred[i])  # Python's sort is stable


def independent_tvsum_video(pred: list[float], clip_scores: list[list[float]]) -> float:
    total = 0.0
    n_annotators = len(clip_scores[0])
    for a in range(n_annotators):
        column = [row[a] for row in clip_scores]
        median = sorted(column)[(len(column) - 1) // 2]
        top5 = _ranked(pred)[:5]
        total += _trapezoid_ap([1 if column[i] > median else 0 for i in top5])
    return total / n_annotators


def independent_youtube_video(pred: list[float], match: list[int]) -> float:
    return _trapezoid_ap([1 if match[i] > 0 else 0 for i in _ranked(pred)])


def _tvsum_anno(data_root: Path) -> dict:
    return json.loads((data_root / "tvsum" / "tvsum_anno.json").read_text())


def test_tvsum_top5_map_matches_independent_loops(data_root: Path):
    rng = np.random.default_rng(2024)
    anno = _tvsum_anno(data_root)
    ours, theirs = [], []
    for vid in sorted(anno):
        scores = anno[vid]["anno"]
        pred = rng.random(len(scores))
        ours.append(tvsum_top5_map_umt(pred, np.array(scores)))
        theirs.append(independent_tvsum_video(pred.tolist(), scores))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
    assert tvsum_dataset_map(ours) == round(sum(theirs) / len(theirs), 5)


def test_youtube_map_matches_independent_loops(data_root: Path):
    root = data_root / "youtube_highlights"
    anno = json.loads((root / "youtube_anno.json").read_text())
    splits = json.loads((root / "splits.json").read_text())
    have = {p.stem for p in (root / "features").glob("*.npz")}
    rng = np.random.default_rng(7)
    for _, lists in sorted(splits.items()):
        test = [v for v in lists["val"] if v in have]
        preds = [rng.random(len(anno[v]["match"])) for v in test]
        matches = [anno[v]["match"] for v in test]
        theirs = [independent_youtube_video(p.tolist(), m) for p, m in zip(preds, matches, strict=True)]
        ours = [youtube_video_ap(p, m) for p, m in zip(preds, matches, strict=True)]
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
        assert youtube_map(preds, matches) == pytest.approx(sum(theirs) / len(theirs), abs=1e-12)


def test_bench_numbers_match_independent_loops(data_root: Path, tmp_path: Path):
    from avhighlights.core.sample import Sample
    from avhighlights.models.base import create_method

    result = run_bench(data_root, "tvsum", "random", [42], out_dir=tmp_path)
    anno = _tvsum_anno(data_root)
    method = create_method("random", {}, {"seed": 42})
    for split in result.splits["42"]:
        (vid,) = split["test"]
        scores = anno[vid]["anno"]
        n = min(len(scores), int(np.load(data_root / "tvsum" / "features" / f"{vid}.npz")["rgb"].shape[0]))
        pred = method.predict(Sample(vid, {}, 2.0, meta={"n_steps": n}))
        expected = round(independent_tvsum_video(pred.tolist(), scores[:n]), 5)
        assert result.per_seed[42][split["name"]]["top5_map_umt"] == pytest.approx(expected, abs=1e-12)
