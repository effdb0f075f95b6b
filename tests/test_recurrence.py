"""The `recurrence` method: no label access in fit, schedule presets, real categories, direct
pseudo-highlight predictions and checkpoint round trips (tiny Joint-VA networks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avhighlights.core.errors import ConfigError
from avhighlights.core.near_constant import CollapsedFitError
from avhighlights.core.sample import FeatureSource, Sample
from avhighlights.models.base import METHODS, create_method
from avhighlights.models.checkpoint import load_checkpoint, save_checkpoint
from avhighlights.models.recurrence import RECIPES, RecurrenceConfig, resolve_schedule, resolve_weights

TINY = {"d_model": 8, "heads": 2, "fc_hidden": 8, "epochs": 2, "batch_size": 2}
DIMS = {"visual": 6, "audio": 4}
BINDING = {"visual": FeatureSource("vis", "1", dim=6), "audio": FeatureSource("aud", "1", dim=4)}


class NoPeekSample(Sample):
    """A sample whose labels raise when read (fit of an unsupervised method must not read them)."""

    @property
    def labels(self):
        raise AssertionError(f"labels of {self.video_id} were read")

    @labels.setter
    def labels(self, value):
        self._labels = value


def planted_videos(n_videos: int, seed: int, group: str = "g", cls=Sample) -> list[Sample]:
    """Videos whose first 4 of 8 clips share a motif (the recurring clips), the rest noise."""
    rng = np.random.default_rng(seed)
    motif_v, motif_a = rng.normal(size=6), rng.normal(size=4)
    videos = []
    for i in range(n_videos):
        v, a = rng.normal(size=(8, 6)), rng.normal(size=(8, 4))
        v[:4] = motif_v + 0.05 * rng.normal(size=(4, 6))
        a[:4] = motif_a + 0.05 * rng.normal(size=(4, 4))
        videos.append(cls(f"{group}{i}", {"visual": v.astype(np.float32), "audio": a.astype(np.float32)}, 2.0,
                          np.ones(8, dtype=np.float32), group))
    return videos


def test_registered_as_unsupervised_with_default_binding():
    cls = METHODS.get("recurrence")
    assert not cls.supervised and cls.trainable and cls.roles == ("visual", "audio")
    assert dict(cls.default_binding) == {"visual": "r3d34", "audio": "panns_cnn14_16k"}


def test_paper_recipe_is_the_papers_schedule_and_pseudo_labels():
    """methods-spec.md §2 "Training [P]" table (TVSum 2.5e-3 / 20, YouTube 5e-3 / 100, QVHighlights 5e-4 / 10)
    and "Pseudo-label generation [P]" steps 3-4 (AV-PH = (aph + vph) / 2, cosine, top 50 %): no motion prior."""
    paper = {"recipe": "paper"}
    assert resolve_schedule(RecurrenceConfig(**paper)) == (2.5e-3, 20)
    assert resolve_schedule(RecurrenceConfig(**paper, dataset_preset="youtube")) == (5e-3, 100)
    assert resolve_schedule(RecurrenceConfig(**paper, dataset_preset="qvhighlights")) == (5e-4, 10)
    assert resolve_schedule(RecurrenceConfig(**paper, dataset_preset="youtube", lr=1e-4, epochs=3)) == (1e-4, 3)
    cfg = RecurrenceConfig(**paper)
    assert resolve_weights(cfg) == (0.0, 0.0)
    assert (cfg.ph_mode, cfg.similarity, cfg.categories, cfg.top_fraction, cfg.noise_sentinel) == \
        ("av", "cosine", "pseudo", 0.5, False)
    with pytest.raises(ConfigError):
        create_method("recurrence", DIMS, {"dataset_preset": "imagenet"})


def test_ours_is_the_default_recipe_with_its_documented_values():
    assert RecurrenceConfig().recipe == "ours" and set(RECIPES) == {"paper", "ours"}
    assert resolve_schedule(RecurrenceConfig()) == (5e-4, 20)
    assert resolve_schedule(RecurrenceConfig(dataset_preset="youtube")) == (5e-4, 20)  # no per-dataset tuning
    assert resolve_weights(RecurrenceConfig()) == (4.0, 1.0)
    assert resolve_weights(RecurrenceConfig(motion_weight=0.0, blend_weight=2.0)) == (0.0, 2.0)
    for bad in ({"recipe": "mine"}, {"motion_weight": -1.0}, {"collapse_retries": -1}):
        with pytest.raises(ConfigError):
            create_method("recurrence", DIMS, {**TINY, **bad})


def test_ours_pseudo_labels_follow_the_motion_prior_when_recurrence_is_flat():
    """Every clip recurs equally (identical directions), so the fused pseudo-scores rank by the visual norm."""
    rng = np.random.default_rng(0)
    direction_v, direction_a = rng.normal(size=6), rng.normal(size=4)
    videos = []
    for i in range(3):
        norms = rng.permutation(np.arange(1.0, 9.0))
        videos.append(Sample(f"v{i}", {"visual": (norms[:, None] * direction_v).astype(np.float32),
                                       "audio": np.tile(direction_a, (8, 1)).astype(np.float32)}, 2.0))
    targets, _ = create_method("recurrence", DIMS, TINY).pseudo_labels(videos, seed=0)
    for video, target in zip(videos, targets, strict=True):
        norms = np.linalg.norm(video.features["visual"], axis=1)
        np.testing.assert_array_equal(target, (norms > np.median(norms)).astype(np.float32))


def test_fit_never_reads_labels_and_trains_on_pseudo_labels():
    method = create_method("recurrence", DIMS, TINY)
    report = method.fit(planted_videos(4, 0, cls=NoPeekSample), seed=0)
    assert report["clustering"]["fallback"] and len(report["train_loss"]) == 2
    assert np.isfinite(report["train_loss"]).all()
    scores = method.predict(planted_videos(1, 5)[0])
    assert scores.shape == (8,) and np.isfinite(scores).all()


def _dead_head(overrides: dict):
    """A dead score head (the last layer zeroed, a learning rate too small to revive it): constant scores."""
    method = create_method("recurrence", DIMS, {**TINY, "lr": 1e-12, **overrides})
    with torch.no_grad():
        method.module.regressor[-1].weight.zero_()
    return method


@pytest.mark.parametrize("recipe", ["paper", "ours"])
def test_a_collapsed_fit_is_retried_from_a_fresh_network_at_a_tenth_of_the_lr(recipe):
    healthy = create_method("recurrence", DIMS, {**TINY, "recipe": recipe})
    report = healthy.fit(planted_videos(4, 0), seed=0)
    assert report["near_constant_on_train"] == 0.0 and report["attempts"] == [0.0]
    method = _dead_head({"recipe": recipe})
    with pytest.warns(UserWarning, match="retry 1 of 2 from a fresh initialisation at lr 1e-13"):
        report = method.fit(planted_videos(4, 0), seed=0)
    assert report["attempts"] == [1.0, 0.0] and report["lr"] == pytest.approx(1e-13)
    assert not np.isclose(np.ptp(method.network_scores(planted_videos(1, 5)[0])), 0.0)


def test_a_fit_that_stays_collapsed_is_refused_with_a_clear_message():
    method = _dead_head({"collapse_retries": 0})
    with pytest.raises(CollapsedFitError, match="collapsed to near-constant scores .* all 1 attempts.*not used"):
        method.fit(planted_videos(4, 0), seed=0)
    assert issubclass(CollapsedFitError, ConfigError) and CollapsedFitError.exit_code == 2


def test_pseudo_labels_mark_the_recurring_clips():
    method = create_method("recurrence", DIMS, {**TINY, "recipe": "paper"})
    targets, _ = method.pseudo_labels(planted_videos(3, 1), seed=0)
    for target in targets:
        np.testing.assert_array_equal(target, [1, 1, 1, 1, 0, 0, 0, 0])


def test_real_categories_come_from_sample_group():
    method = create_method("recurrence", DIMS, {**TINY, "categories": "real"})
    _, report = method.pseudo_labels(planted_videos(2, 2, "a") + planted_videos(3, 3, "b"), seed=0)
    assert report["real_groups"] == ["a", "b"] and report["category_sizes"] == [2, 3]


def test_direct_pseudo_scores_rank_recurring_clips_of_unseen_video_first():
    method = create_method("recurrence", DIMS, {**TINY, "direct_pseudo": True, "recipe": "paper"})
    report = method.fit(planted_videos(4, 4), seed=0)
    assert report["network"] is False
    unseen = planted_videos(5, 4)[4]  # same motif, new noise
    scores = method.predict(unseen)
    assert set(np.argsort(-scores)[:4]) == {0, 1, 2, 3}


@pytest.mark.parametrize("direct", [False, True])
def test_checkpoint_round_trip_gives_identical_predictions(tmp_path, direct):
    method = create_method("recurrence", DIMS, {**TINY, "direct_pseudo": direct})
    method.fit(planted_videos(4, 6), seed=3)
    path = save_checkpoint(method, tmp_path / "rec.safetensors", BINDING)
    restored, info = load_checkpoint(path, BINDING)
    assert info.method == "recurrence"
    sample = planted_videos(1, 7)[0]
    np.testing.assert_array_equal(restored.predict(sample), method.predict(sample))


def test_unimodal_network_variant_trains():
    method = create_method("recurrence", DIMS, {**TINY, "modalities": ["audio"], "ph_mode": "a"})
    report = method.fit(planted_videos(3, 8), seed=0)
    assert np.isfinite(report["train_loss"]).all()
    assert method.module.stream_weights().shape == (1,)
