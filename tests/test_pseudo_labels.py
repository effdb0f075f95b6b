"""Pseudo-highlights from audio-visual recurrence (Islam et al.): linear-time similarity,
planted recurring clips, pseudo-category clustering and its small-data fallback."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from avhighlights.core.errors import ConfigError
from avhighlights.models.pseudo_labels import (
    av_pseudo_scores,
    category_means,
    centred_unit_rows,
    cluster_range,
    naive_recurrence_scores,
    normaliser,
    pseudo_categories,
    recurrence_scores,
    top_fraction_binary,
    unit_rows,
    video_descriptor,
)


@pytest.mark.parametrize("similarity", ["cosine", "pearson"])
def test_linear_time_equals_naive_mean_of_pairwise_similarities(similarity):
    rng = np.random.default_rng(0)
    videos = [rng.normal(size=(n, 6)) for n in (4, 7, 5)]
    norm = normaliser(similarity)
    mean = category_means(videos, np.zeros(3, dtype=int), norm)[0]
    everything = np.concatenate(videos)  # the S clips of the category, own video included
    for clips in videos:
        np.testing.assert_allclose(recurrence_scores(clips, mean, norm),
                                   naive_recurrence_scores(clips, everything, norm), atol=1e-12)


def test_cosine_and_pearson_on_hand_values():
    x = np.array([[3.0, 4.0], [0.0, 2.0]])
    np.testing.assert_allclose(unit_rows(x), [[0.6, 0.8], [0.0, 1.0]])
    # Pearson of [1, 2, 3] with [3, 2, 1] is -1.
    rows = centred_unit_rows(np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]))
    assert rows[0] @ rows[1] == pytest.approx(-1.0)


def test_planted_recurring_clips_get_the_highest_scores():
    rng = np.random.default_rng(1)
    motif_v, motif_a = rng.normal(size=16), rng.normal(size=8)
    visual, audio, planted = [], [], []
    for _ in range(4):
        v, a = rng.normal(size=(10, 16)), rng.normal(size=(10, 8))
        hot = rng.choice(10, size=5, replace=False)
        v[hot] = motif_v + 0.1 * rng.normal(size=(5, 16))
        a[hot] = motif_a + 0.1 * rng.normal(size=(5, 8))
        visual.append(v), audio.append(a), planted.append(np.isin(np.arange(10), hot).astype(np.float32))
    scores = av_pseudo_scores(visual, audio, np.zeros(4, dtype=int))
    for video_scores, truth in zip(scores, planted, strict=True):
        np.testing.assert_array_equal(top_fraction_binary(video_scores), truth)


def test_single_modality_modes_use_only_that_modality():
    rng = np.random.default_rng(2)
    visual = [rng.normal(size=(5, 4)) for _ in range(2)]
    audio = [rng.normal(size=(5, 3)) for _ in range(2)]
    cats = np.zeros(2, dtype=int)
    v_only = av_pseudo_scores(visual, audio, cats, "v")
    a_only = av_pseudo_scores(visual, audio, cats, "a")
    both = av_pseudo_scores(visual, audio, cats, "av")
    for v, a, av in zip(v_only, a_only, both, strict=True):
        np.testing.assert_allclose(av, (v + a) / 2)
    with pytest.raises(ConfigError):
        av_pseudo_scores(visual, audio, cats, "va")


def test_top_fraction_binary_hand_example():
    np.testing.assert_array_equal(top_fraction_binary(np.array([0.1, 0.9, 0.5, 0.5, 0.2, 0.0])), [0, 1, 1, 1, 0, 0])
    # k = round(0.5 * 5) = 2 (half to even); the tie at 0.5 goes to the earlier step.
    np.testing.assert_array_equal(top_fraction_binary(np.array([0.1, 0.9, 0.5, 0.5, 0.2])), [0, 1, 1, 0, 0])
    np.testing.assert_array_equal(top_fraction_binary(np.array([0.3])), [1])


def test_cluster_range_follows_sqrt_rule():
    assert list(cluster_range(16)) == [2, 3, 4]
    assert list(cluster_range(3)) == []
    assert list(cluster_range(10_000)) == list(range(2, 31))


def test_descriptor_concatenates_modality_means():
    v, a = np.array([[1.0, 3.0], [3.0, 5.0]]), np.array([[2.0], [4.0]])
    np.testing.assert_allclose(video_descriptor(v, a), [2.0, 4.0, 3.0])


def test_fewer_than_twelve_videos_fall_back_to_one_category():
    labels, report = pseudo_categories(np.random.default_rng(0).normal(size=(11, 5)), seed=0)
    assert labels.tolist() == [0] * 11 and report["fallback"] and report["k"] == 1


def test_clustering_recovers_planted_categories():
    rng = np.random.default_rng(3)
    centres = rng.normal(scale=10.0, size=(3, 12))
    truth = np.repeat(np.arange(3), 8)
    descriptors = centres[truth] + rng.normal(scale=0.3, size=(24, 12))
    labels, report = pseudo_categories(descriptors, seed=0)
    assert report["k"] == 3 and not report["fallback"]
    assert adjusted_rand_score(truth, labels) == pytest.approx(1.0)
    again, _ = pseudo_categories(descriptors, seed=0)
    np.testing.assert_array_equal(labels, again)
