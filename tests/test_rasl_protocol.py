"""Cross-dataset protocols for RASL pretraining (source without labels -> unseen target)."""

from __future__ import annotations

import numpy as np
import pytest

from avhighlights.evaluation.protocol_cross_dataset import (
    SOURCE_PREFIX,
    CrossToTVSumTop5,
    CrossToYouTube,
    TVSumToYouTube,
    YouTubeToTVSum,
    group_means,
)
from avhighlights.evaluation.protocols import PROTOCOLS


def test_group_means_hand_values():
    out = group_means([0.2, 0.4, 1.0], ["a", "a", "b"], ("a", "b", "c"), "m")
    assert out["m_a"] == pytest.approx(0.3) and out["m_b"] == pytest.approx(1.0) and np.isnan(out["m_c"])
    assert out["m"] == pytest.approx(0.65)


def test_protocols_registered_for_their_datasets():
    assert PROTOCOLS.get("xdata_tvsum_top5") is CrossToTVSumTop5 and CrossToTVSumTop5.dataset == "youtube_to_tvsum"
    assert PROTOCOLS.get("xdata_youtube") is CrossToYouTube and CrossToYouTube.dataset == "tvsum_to_youtube"


def test_youtube_to_tvsum_trains_on_every_youtube_video(data_root):
    dataset = YouTubeToTVSum.from_data_root(data_root)
    (split,) = dataset.splits()
    assert len(split.test_ids) == 50 and all(v.startswith(SOURCE_PREFIX) for v in split.train_ids)
    assert len(split.train_ids) == len(dataset.source.video_ids())
    sample = dataset.sample(split.train_ids[0])
    assert sample.video_id == split.train_ids[0] and sample.features["visual"].shape[1] == 2048
    assert set(dataset.label_meta_keys) == {"match", "annotations", "frame_annotations"}


def test_tvsum_to_youtube_oracle_scores_every_domain(data_root):
    dataset = TVSumToYouTube.from_data_root(data_root, ["parkour"])
    (split,) = dataset.splits()
    assert len(split.train_ids) == 50 and len(split.test_ids) == 11
    samples = dataset.samples(split.test_ids)
    oracle = [s.meta["match"] for s in samples]
    metrics = CrossToYouTube().evaluate(samples, oracle)
    # A perfect ranking has AP 1 (0 for a video without positives).
    expected = np.mean([float((s.meta["match"] > 0).any()) for s in samples])
    assert metrics["map_parkour"] == pytest.approx(expected) and metrics["map"] == pytest.approx(expected)
    assert np.isnan(metrics["map_dog"])
