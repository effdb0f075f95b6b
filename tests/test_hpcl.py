"""HPCL: losses against hand-computed values, balanced sampler, masking, ablations, checkpoints, learning."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from avhighlights.core.errors import ConfigError
from avhighlights.core.sample import FeatureSource, Sample
from avhighlights.models.base import create_method
from avhighlights.models.checkpoint import load_checkpoint, save_checkpoint
from avhighlights.models.hpcl import HPCLMethod, HPCLNet
from avhighlights.models.hpcl_losses import (
    balanced_segment_indices,
    dense_supcon_loss,
    hard_pair_ranking_loss,
    hard_pairs,
)
from avhighlights.models.joint_va import binarise_labels
from avhighlights.models.torch_method import collate

DIMS = {"visual": 12, "audio": 10}
TINY = {"d_model": 16, "heads": 2, "d_k": 16, "d_v": 16, "ffn_hidden": 16, "head_hidden": 16}


def make_sample(video_id: str, n_steps: int, rng: np.random.Generator, signal: float = 0.0) -> Sample:
    """Random features; with `signal`, visual dim 0 is +signal on highlights and -signal elsewhere."""
    labels = (rng.random(n_steps) < 0.4).astype(np.float32)
    visual = rng.normal(size=(n_steps, DIMS["visual"])).astype(np.float32)
    visual[:, 0] += signal * (2 * labels - 1)
    audio = rng.normal(size=(n_steps, DIMS["audio"])).astype(np.float32)
    return Sample(video_id, {"visual": visual, "audio": audio}, 2.0, labels=labels)


def tiny_method(**overrides) -> HPCLMethod:
    torch.manual_seed(0)
    return create_method("hpcl", DIMS, {**TINY, **overrides})


# ---- losses --------------------------------------------------------------------------------------

def test_supcon_hand_computed_three_vectors():
    emb = torch.tensor([[[1.0, 0.0], [0.0, 3.0], [-2.0, 0.0]]])  # normalised: e1, e2, -e1
    labels, mask = torch.tensor([[1.0, 1.0, 0.0]]), torch.ones(1, 3, dtype=torch.bool)
    # anchor 0: pos 1 (sim 0), neg 2 (sim -1) -> log(1 + e^-1); anchor 1: pos 0 (0), neg 2 (0) -> log 2;
    # anchor 2 has no positive and is skipped.
    expected = (math.log(1 + math.exp(-1)) + math.log(2)) / 2
    assert dense_supcon_loss(emb, labels, mask, tau=1.0).item() == pytest.approx(expected, rel=1e-6)


def test_supcon_four_vectors_temperature_in_both_terms():
    emb = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]])
    labels, mask = torch.tensor([[1.0, 1.0, 0.0, 0.0]]), torch.ones(1, 4, dtype=torch.bool)
    # every anchor: one positive at sim 1, two negatives at sim 0 -> -log(e^{1/t} / (e^{1/t} + 2))
    tau = 0.5
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + 2))
    assert dense_supcon_loss(emb, labels, mask, tau=tau).item() == pytest.approx(expected, rel=1e-5)


def test_supcon_ignores_padding_and_has_finite_gradient():
    rng = np.random.default_rng(0)
    emb = torch.tensor(rng.normal(size=(1, 6, 4)), dtype=torch.float32)
    labels = torch.tensor([[1.0, 0.0, 1.0, 0.0, 1.0, 1.0]])
    alone = dense_supcon_loss(emb[:, :4], labels[:, :4], torch.ones(1, 4, dtype=torch.bool), 0.1)
    padded_mask = torch.tensor([[True, True, True, True, False, False]])
    emb_padded = emb.clone().requires_grad_(True)
    padded = dense_supcon_loss(emb_padded, labels, padded_mask, 0.1)
    assert padded.item() == pytest.approx(alone.item(), rel=1e-6)
    padded.backward()
    assert torch.isfinite(emb_padded.grad).all() and emb_padded.grad[0, 4:].abs().sum() == 0


def test_supcon_single_class_video_gives_zero():
    emb = torch.randn(1, 5, 3)
    assert dense_supcon_loss(emb, torch.ones(1, 5), torch.ones(1, 5, dtype=torch.bool), 0.1).item() == 0.0


def test_supcon_batch_with_a_single_class_video_keeps_finite_gradients():
    emb = torch.randn(2, 4, 3, requires_grad=True)
    labels = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 1.0, 0.0]])
    loss = dense_supcon_loss(emb, labels, torch.ones(2, 4, dtype=torch.bool), 0.1)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(emb.grad).all()


def test_hard_pairs_replace_out_of_range_indices_by_the_watershed():
    assert hard_pairs(np.array([0, 0, 1, 1])) == [(1, 3), (0, 2), (2, 2)]
    assert hard_pairs(np.array([1, 0, 0, 0, 0, 0])) == [(0, 2), (1, 3), (1, 4)]
    assert hard_pairs(np.array([0, 0, 0, 0, 1])) == [(3, 4), (2, 4), (1, 4)]
    assert hard_pairs(np.array([0, 1, 0]), region=1) == [(0, 2), (1, 2)]
    assert hard_pairs(np.array([1, 1, 1])) == []


def test_ranking_hinge_hand_computed():
    feats = torch.tensor([[[2.0, 0.0], [1.0, 0.0], [0.0, 5.0], [0.0, 1.0]]])  # unit: e1, e1, e2, e2
    labels, mask = torch.tensor([[0.0, 0.0, 1.0, 1.0]]), torch.ones(1, 4, dtype=torch.bool)
    # pairs (1,3), (0,2): distance sqrt(2) -> max(0, m - 1.4142); (2,2): distance 0 -> m
    assert hard_pair_ranking_loss(feats, labels, mask, margin=0.7).item() == pytest.approx(0.7, rel=1e-6)
    expected = 2 * (2.0 - math.sqrt(2)) + 2.0
    assert hard_pair_ranking_loss(feats, labels, mask, margin=2.0).item() == pytest.approx(expected, rel=1e-6)


def test_ranking_uses_only_valid_steps():
    feats = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])
    labels = torch.tensor([[0.0, 1.0, 0.0]])
    mask = torch.tensor([[True, True, False]])  # the change at step 2 is padding and must be ignored
    # valid labels [0, 1]: c = 1, k = 1: pair (0, 2 -> 1), unit distance sqrt(2); margin 2 -> 2 - sqrt(2)
    expected = 2.0 - math.sqrt(2)
    assert hard_pair_ranking_loss(feats, labels, mask, margin=2.0, region=1).item() == pytest.approx(expected, rel=1e-6)


# ---- sampler and labels --------------------------------------------------------------------------

@pytest.mark.parametrize("n_pos, n_total", [(3, 100), (50, 100), (97, 100), (2, 5), (40, 41)])
def test_balanced_sampler_ratio_and_sorting(n_pos, n_total):
    rng = np.random.default_rng(1)
    labels = np.zeros(n_total)
    labels[rng.choice(n_total, n_pos, replace=False)] = 1
    for _ in range(30):
        idx = balanced_segment_indices(labels, 20, 7, rng)
        drawn_pos = int(labels[idx].sum())
        assert idx.shape == (20,) and np.all(np.diff(idx) >= 0)
        assert 0 <= idx.min() and idx.max() < n_total
        assert min(drawn_pos, 20 - drawn_pos) >= 7


def test_balanced_sampler_single_class_is_uniform_draw():
    idx = balanced_segment_indices(np.ones(8), 20, 7, np.random.default_rng(0))
    assert idx.shape == (20,) and np.all(np.diff(idx) >= 0) and idx.max() < 8


def test_binarise_labels_top_half_and_binary_kept():
    np.testing.assert_array_equal(binarise_labels(np.array([0.1, 0.9, 0.5, 0.3])), [0, 1, 1, 0])
    np.testing.assert_array_equal(binarise_labels(np.array([1.0, 0.0, 0.0])), [1, 0, 0])


# ---- network ---------------------------------------------------------------------------------------

def test_shapes_and_embedding_width():
    torch.manual_seed(0)
    net = HPCLNet(DIMS, **TINY)
    mask = torch.ones(3, 9, dtype=torch.bool)
    out = net({"visual": torch.randn(3, 9, 12), "audio": torch.randn(3, 9, 10)}, mask)
    assert out.scores.shape == (3, 9) and len(out.head_logits) == 3 and out.embedding.shape == (3, 9, 32)
    np.testing.assert_allclose(net.head_weights.detach().numpy(), [1 / 3] * 3)


@pytest.mark.parametrize("overrides", [{}, {"fusion": "concat"}, {"fusion": "cross_attention"},
                                       {"modalities": ("visual",)}, {"modalities": ("audio",)},
                                       {"use_global_decoder": False}, {"global_init": "random"}])
def test_padding_never_changes_scores(overrides):
    method = tiny_method(**overrides)
    method.module.eval()
    rng = np.random.default_rng(3)
    short, long = make_sample("a", 7, rng), make_sample("b", 11, rng)
    with torch.no_grad():
        together = method.forward_scores(collate([short, long], method.roles))
    np.testing.assert_allclose(together[0, :7].numpy(), method.predict(short), atol=1e-5)
    np.testing.assert_allclose(together[1].numpy(), method.predict(long), atol=1e-5)
    assert torch.all(together[0, 7:] == 0)


@pytest.mark.parametrize("overrides", [{"fusion": "concat"}, {"fusion": "cross_attention"},
                                       {"modalities": ("audio",)}, {"use_global_decoder": False},
                                       {"global_init": "random"}, {"hpcl_weight": 0.0, "rank_weight": 0.0}])
def test_ablation_switches_train_and_predict(overrides):
    method = tiny_method(epochs=1, **overrides)
    rng = np.random.default_rng(4)
    report = method.fit([make_sample(f"v{i}", 25, rng) for i in range(2)])
    assert np.isfinite(report["train_loss"][0]["total"])
    assert method.predict(make_sample("t", 13, rng)).shape == (13,)


def test_fused_ce_weight_trains_the_head_weights():
    method = tiny_method(epochs=1, fused_ce_weight=1.0)
    method.fit([make_sample("v0", 25, np.random.default_rng(7))])
    assert not torch.allclose(method.module.head_weights.detach(), torch.full((3,), 1 / 3))


def test_unimodal_model_has_one_head_and_no_decoder():
    method = tiny_method(modalities=("visual",))
    assert len(method.module.heads) == 1 and len(method.module.decoders) == 0 and "audio" not in method.module.encoders


def test_bad_options_raise_config_error():
    with pytest.raises(ConfigError, match="fusion"):
        tiny_method(fusion="sum")
    with pytest.raises(ConfigError, match="modalities"):
        tiny_method(modalities=("visual", "depth"))
    with pytest.raises(ConfigError, match="min_minority"):
        tiny_method(min_minority=11)
    with pytest.raises(ConfigError, match="draws_per_video"):
        tiny_method(draws_per_video=0)


def test_unlabelled_training_video_is_refused():
    sample = make_sample("nolabel", 10, np.random.default_rng(0))
    sample.labels = None
    with pytest.raises(ConfigError, match="nolabel"):
        tiny_method(epochs=1).fit([sample])


def test_checkpoint_round_trip_gives_identical_predictions(tmp_path):
    method = tiny_method(epochs=1)
    rng = np.random.default_rng(5)
    method.fit([make_sample("v0", 30, rng)])
    binding = {"visual": FeatureSource("i3d_rgb_flow", "umt", "dataset", 12),
               "audio": FeatureSource("panns", "umt", "dataset", 10)}
    path = save_checkpoint(method, tmp_path / "hpcl.safetensors", binding)
    restored, info = load_checkpoint(path, binding)
    probe = make_sample("probe", 17, rng)
    assert info.method == "hpcl" and info.config["d_model"] == 16
    np.testing.assert_array_equal(restored.predict(probe), method.predict(probe))


def test_learns_synthetic_highlights():
    rng = np.random.default_rng(6)
    train = [make_sample(f"tr{i}", int(rng.integers(25, 40)), rng, signal=2.0) for i in range(12)]
    test = [make_sample(f"te{i}", 30, rng, signal=2.0) for i in range(4)]
    method = tiny_method(epochs=15, lr=3e-3, batch_size=4)
    report = method.fit(train, val=test[:2])
    aps = [average_precision_score(s.labels, method.predict(s)) for s in test]
    assert report["train_loss"][-1]["total"] < report["train_loss"][0]["total"]
    assert np.mean(aps) > 0.95
