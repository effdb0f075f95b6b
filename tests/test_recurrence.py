"""The `recurrence` method: no label access in fit, schedule presets, real categories, direct
pseudo-highlight predictions and checkpoint round trips (tiny Joint-VA networks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avhighlights.core.errors import ConfigError
from avhighlights.core.sample import FeatureSource, Sample
from avhighlights.models.base import METHODS, create_method
from avhighlights.models.checkpoint import load_checkpoint, save_checkpoint
from avhighlights.models.recurrence import RecurrenceConfig, resolve_schedule

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


def test_schedule_presets_and_explicit_values():
    assert resolve_schedule(RecurrenceConfig()) == (2.5e-3, 20)
    assert resolve_schedule(RecurrenceConfig(dataset_preset="youtube")) == (5e-3, 100)
    assert resolve_schedule(RecurrenceConfig(dataset_preset="youtube", lr=1e-4, epochs=3)) == (1e-4, 3)
    with pytest.raises(ConfigError):
        create_method("recurrence", DIMS, {"dataset_preset": "imagenet"})


def test_fit_never_reads_labels_and_trains_on_pseudo_labels():
    method = create_method("recurrence", DIMS, TINY)
    report = method.fit(planted_videos(4, 0, cls=NoPeekSample), seed=0)
    assert report["clustering"]["fallback"] and len(report["train_loss"]) == 2
    assert np.isfinite(report["train_loss"]).all()
    scores = method.predict(planted_videos(1, 5)[0])
    assert scores.shape == (8,) and np.isfinite(scores).all()


def test_a_network_that_collapses_to_a_constant_is_reported_and_warned():
    """A dead score head (here: the last layer zeroed and a learning rate too small to revive it) gives the
    same score everywhere; fit says so in its report and warns, since the scores carry no ranking."""
    healthy = create_method("recurrence", DIMS, TINY)
    assert healthy.fit(planted_videos(4, 0), seed=0)["near_constant_on_train"] == 0.0
    method = create_method("recurrence", DIMS, {**TINY, "lr": 1e-12})
    with torch.no_grad():
        method.module.regressor[-1].weight.zero_()
    with pytest.warns(UserWarning, match="constant scores on 100% of its training videos.*collapsed at lr 1e-12"):
        report = method.fit(planted_videos(4, 0), seed=0)
    assert report["near_constant_on_train"] == 1.0


def test_pseudo_labels_mark_the_recurring_clips():
    method = create_method("recurrence", DIMS, TINY)
    targets, _ = method.pseudo_labels(planted_videos(3, 1), seed=0)
    for target in targets:
        np.testing.assert_array_equal(target, [1, 1, 1, 1, 0, 0, 0, 0])


def test_real_categories_come_from_sample_group():
    method = create_method("recurrence", DIMS, {**TINY, "categories": "real"})
    _, report = method.pseudo_labels(planted_videos(2, 2, "a") + planted_videos(3, 3, "b"), seed=0)
    assert report["real_groups"] == ["a", "b"] and report["category_sizes"] == [2, 3]


def test_direct_pseudo_scores_rank_recurring_clips_of_unseen_video_first():
    method = create_method("recurrence", DIMS, {**TINY, "direct_pseudo": True})
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
