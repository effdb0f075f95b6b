"""RASL: every loss on hand-made tensors, masking, window looping, inference concatenation,
parameter / MAC counts and checkpoint round trips (tiny networks of the real architecture)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from avhighlights.core.errors import ConfigError
from avhighlights.core.near_constant import CollapsedFitError
from avhighlights.core.sample import FeatureSource, Sample
from avhighlights.models.base import METHODS, create_method
from avhighlights.models.checkpoint import load_checkpoint, save_checkpoint
from avhighlights.models.rasl import (
    RECIPES,
    Recipe,
    complexity,
    inference_chunks,
    loop_to_length,
    match_width,
    min_max,
    resolved,
    training_starts,
)
from avhighlights.models.rasl_losses import (
    kpoint_eta,
    kpoint_loss,
    random_step_mask,
    rank_indices,
    reconstruction_l1,
    scl_loss,
)
from avhighlights.models.rasl_net import RankProjections, standardised_sigmoid
from avhighlights.models.recurrence_prior import motion_prior, rank_unit

TINY = {"window_steps": 4, "k": 1, "epochs": 2, "batch_size": 2, "recipe": "paper"}
DIMS = {"visual": 16, "audio": 8}
BINDING = {"visual": FeatureSource("vis", "1", dim=16), "audio": FeatureSource("aud", "1", dim=8)}


def video(n_steps: int, seed: int) -> Sample:
    rng = np.random.default_rng(seed)
    feats = {"visual": rng.random((n_steps, 16)).astype(np.float32),
             "audio": rng.random((n_steps, 8)).astype(np.float32)}
    return Sample(f"v{seed}", feats, 2.0, None, "g")


def test_reconstruction_l1_hand_value():
    target, recon = torch.tensor([[1.0, -2.0], [0.0, 4.0]]), torch.tensor([[0.0, 0.0], [0.5, 4.0]])
    assert float(reconstruction_l1(target, recon)) == pytest.approx((1 + 2 + 0.5 + 0) / 4)


def test_rank_indices_are_ordered_by_ascending_score():
    top, bottom = rank_indices(torch.tensor([[0.3, -1.0, 2.0, 0.5, 0.0]]), 2)
    assert top.tolist() == [[3, 2]] and bottom.tolist() == [[1, 4]]


def test_kpoint_loss_hand_value():
    # k = 1, N = 2: top step 1 (s = 0.5, z = [1, 0]), bottom step 0 (z = [0, 1]); identity
    # projections; LN maps them to ~[1, -1] and [-1, 1], cos = -1, eta = 0.5 * 2 = 1.
    proj = RankProjections(2, 1)
    s, z = torch.tensor([[0.0, 0.5]]), torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])
    assert float(kpoint_eta(s, z, proj, 1).detach()) == pytest.approx(1.0, abs=1e-5)
    assert float(kpoint_loss(s, z, proj, 1).detach()) == pytest.approx(math.log(1 + math.exp(-1.0)), abs=1e-5)
    # Without contrast: eta = mean of the top-k activations = 0.5.
    assert float(kpoint_loss(s, z, proj, 1, contrast=False).detach()) == pytest.approx(math.log(1 + math.exp(-0.5)))


def test_kpoint_identical_codes_give_zero_eta():
    proj = RankProjections(3, 2)
    z = torch.ones(1, 4, 3) * torch.tensor([1.0, 2.0, 4.0])
    assert float(kpoint_eta(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), z, proj, 2).detach()) == pytest.approx(0.0, abs=1e-6)


def test_scl_hand_values_for_both_gamma_modes():
    eye = torch.eye(2).unsqueeze(0)  # (1, N=2, c=2): aligned steps identical, others orthogonal
    # scale 1: every row is -log(e / (e + 1)) = log(1 + e^-1).
    assert float(scl_loss(eye, eye, torch.tensor(1.0), "multiplier")) == pytest.approx(math.log(1 + math.exp(-1)))
    # exp mode with Gamma = log 2 -> scale 2: log(1 + e^-2).
    assert float(scl_loss(eye, eye, torch.tensor(math.log(2.0)), "exp")) == pytest.approx(math.log(1 + math.exp(-2)))


def test_scl_is_symmetric_in_audio_and_visual():
    rng = torch.Generator().manual_seed(0)
    a, v = torch.randn(2, 5, 3, generator=rng), torch.randn(2, 5, 3, generator=rng)
    gamma = torch.tensor(3.1)
    assert float(scl_loss(a, v, gamma)) == pytest.approx(float(scl_loss(v, a, gamma)), rel=1e-6)


def test_random_step_mask_masks_half_of_every_window():
    keep = random_step_mask(3, 10, 0.5, torch.Generator().manual_seed(0))
    assert keep.shape == (3, 10) and keep.sum(dim=1).tolist() == [5, 5, 5]
    assert not torch.equal(keep[0], keep[1]) or not torch.equal(keep[1], keep[2])


def test_aux_loss_equals_reconstruction_when_nothing_is_masked():
    method = create_method("rasl", DIMS, TINY)
    branch = method.module.branches["visual"]
    with torch.no_grad():  # positive weights keep every ReLU open, so D's output depends on its input
        for module in (*branch.encoder, *branch.decoder, branch.psi, branch.score):
            for param in module.parameters():
                param.fill_(0.3)
    rho_v, rho_a = torch.rand(2, 4, 16), torch.rand(2, 4, 16)
    terms = method.losses(rho_v, rho_a, torch.ones(2, 4, dtype=torch.bool))
    assert float(terms["visual_au"].detach()) == pytest.approx(float(terms["visual_e"].detach()))
    masked = method.losses(rho_v, rho_a, random_step_mask(2, 4, 0.5, torch.Generator().manual_seed(1)))
    assert float(masked["visual_au"].detach()) != pytest.approx(float(masked["visual_e"].detach()))
    assert set(terms) == {"visual_e", "visual_r", "visual_au", "audio_e", "audio_r", "audio_au", "scl"}


def test_window_helpers():
    np.testing.assert_array_equal(loop_to_length(np.arange(3)[:, None], 7)[:, 0], [0, 1, 2, 0, 1, 2, 0])
    assert training_starts(10, 4) == [0, 4, 6] and training_starts(8, 4) == [0, 4] and training_starts(3, 4) == [0]
    assert inference_chunks(10, 4) == [(0, 4), (4, 8), (8, 10)]
    np.testing.assert_allclose(min_max(np.array([2.0, 4.0, 3.0])), [0.0, 1.0, 0.5])
    np.testing.assert_array_equal(min_max(np.array([1.0, 1.0])), [0.0, 0.0])


def test_audio_feature_axis_is_interpolated_to_visual_width():
    audio = torch.tensor([[[0.0, 2.0]]])  # (1, 1, 2)
    np.testing.assert_allclose(match_width(audio, 3)[0, 0].numpy(), [0.0, 1.0, 2.0])


def test_inference_concatenates_looped_windows():
    method = create_method("rasl", DIMS, TINY)
    sample = video(10, 0)
    visual = torch.from_numpy(sample.features["visual"])
    with torch.no_grad():
        method.module.eval()
        parts = [method.module.visual_scores(visual[0:4][None])[0],
                 method.module.visual_scores(visual[4:8][None])[0],
                 method.module.visual_scores(visual[[8, 9, 8, 9]][None])[0, :2]]
    expected = min_max(torch.cat(parts).double().numpy())
    np.testing.assert_allclose(method.predict(sample), expected, atol=1e-6)


def test_short_video_is_looped_then_cropped():
    method = create_method("rasl", DIMS, TINY)
    scores = method.predict(video(3, 1))
    assert scores.shape == (3,) and scores.min() == 0.0 and scores.max() == 1.0


def test_fit_without_labels_and_checkpoint_round_trip(tmp_path):
    method = create_method("rasl", DIMS, TINY)
    report = method.fit([video(9, 2), video(3, 3)], seed=0)
    assert report["windows"] == 4 and len(report["history"]) == 2
    assert all(np.isfinite(list(epoch.values())).all() for epoch in report["history"])
    path = save_checkpoint(method, tmp_path / "rasl.safetensors", BINDING)
    restored, _ = load_checkpoint(path, BINDING)
    sample = video(11, 4)
    np.testing.assert_array_equal(restored.predict(sample), method.predict(sample))


def test_registration_and_config_checks():
    cls = METHODS.get("rasl")
    assert not cls.supervised and dict(cls.default_binding) == {"visual": "swin", "audio": "panns_cnn14_16k"}
    with pytest.raises(ConfigError):
        create_method("rasl", {"visual": 12, "audio": 8}, TINY)  # 12 is not divisible by 8
    with pytest.raises(ConfigError):
        create_method("rasl", DIMS, {**TINY, "k": 3})  # k > N / 2


def test_parameter_and_mac_counts_at_paper_size():
    counts = complexity(1024, 150, 10)
    branch = 4 * (1024 * 1024 + 1024) + 7 * (150 * 3 + 150) + 128  # SA + 3 enc + 3 dec + psi convs + FC
    assert counts["visual_branch_parameters"] == branch == 4_202_728
    assert counts["parameters"] == 2 * branch + 2 * (2 * 10 * 128 * 128 + 2 * 128) + 1
    projections = 4 * 150 * 1024 * 1024 + 2 * 150 * 150 * 1024
    convs = 150 * 3 * (512 + 256 + 128 + 128) + 150 * 128
    assert counts["gmacs_per_window"] * 1e9 == pytest.approx(projections + convs)


def test_shared_kernels_make_scores_position_invariant():
    same_steps = torch.rand(1, 16).expand(4, 16)[None]  # (1, N=4, d): every step identical
    shared = create_method("rasl", DIMS, {**TINY, "per_step_kernels": False}).module
    per_step = create_method("rasl", DIMS, TINY).module
    with torch.no_grad():
        s_shared, s_per_step = shared.visual_scores(same_steps)[0], per_step.visual_scores(same_steps)[0]
    np.testing.assert_allclose(s_shared.numpy(), s_shared[0].item(), atol=1e-6)
    assert float(s_per_step.std()) > 1e-4
    assert create_method("rasl", DIMS, {**TINY, "per_step_kernels": False}).predict(video(6, 5)).shape == (6,)


def _dead_score_head(overrides: dict):
    """The visual score FC zeroed and an lr too small to revive it: s^v = 0 everywhere (a collapsed fit)."""
    method = create_method("rasl", DIMS, {**TINY, "lr": 1e-12, **overrides})
    with torch.no_grad():
        method.module.branches["visual"].score.weight.zero_()
    return method


def test_collapsed_pretraining_is_retried_from_a_fresh_network_at_a_tenth_of_the_lr():
    healthy = create_method("rasl", DIMS, TINY).fit([video(9, 2), video(5, 3)], seed=0)
    assert healthy["attempts"] == [0.0] and healthy["near_constant_on_train"] == 0.0
    method = _dead_score_head({})
    report = method.fit([video(9, 2), video(5, 3)], seed=0)
    assert report["attempts"] == [1.0, 0.0] and report["lr"] == pytest.approx(1e-13)
    assert np.ptp(method.predict(video(11, 4))) == 1.0


def test_pretraining_that_stays_collapsed_is_refused():
    with pytest.raises(CollapsedFitError, match="rasl: the fit collapsed .* all 1 attempts"):
        _dead_score_head({"collapse_retries": 0}).fit([video(9, 2), video(5, 3)], seed=0)


def test_recipes_resolve_and_explicit_fields_win():
    assert RECIPES["paper"] == Recipe("linear", True, 0.0, "default")
    method = create_method("rasl", DIMS, {**TINY, "recipe": "ours"})
    assert resolved(method.config) == RECIPES["ours"]
    mixed = create_method("rasl", DIMS, {**TINY, "activation": "sigmoid", "prior_weight": 2.0}).config
    assert resolved(mixed) == Recipe("sigmoid", True, 2.0, "default")
    for bad in ({"recipe": "nope"}, {"activation": "relu6"}, {"prior_weight": -1.0}, {"kernel_init": "zeros"}):
        with pytest.raises(ConfigError):
            create_method("rasl", DIMS, {**TINY, **bad})


def test_bounded_activations_stay_in_range_whatever_the_fc_scale():
    module = create_method("rasl", DIMS, {**TINY, "activation": "sigmoid"}).module
    with torch.no_grad():
        module.branches["visual"].score.weight.mul_(1e4)  # what inflating the scale of s would do
        s = module.visual_scores(torch.randn(8, 4, 16) * 10)
    assert float(s.min()) >= 0.0 and float(s.max()) <= 1.0
    competing = create_method("rasl", DIMS, {**TINY, "activation": "softmax_time"}).module
    with torch.no_grad():
        competing.branches["visual"].score.weight.mul_(1e4)
        s = competing.visual_scores(torch.randn(8, 4, 16) * 10)
    assert float(s.min()) >= 0.0 and float(s.max()) <= 4.0  # N = 4 steps
    np.testing.assert_allclose(s.mean(dim=1).numpy(), 1.0, rtol=1e-5)  # the steps share a fixed budget
    linear = create_method("rasl", DIMS, TINY).module
    with torch.no_grad():
        linear.branches["visual"].score.weight.mul_(1e4)
        assert float(linear.visual_scores(torch.randn(8, 4, 16) * 10).abs().max()) > 1.0  # unbounded


def test_shared_kernels_shift_with_the_content_per_step_kernels_do_not():
    rho = torch.rand(2, 4, 16)
    shifted = torch.roll(rho, shifts=1, dims=1)  # the window's content moved one step later (cyclically)
    for overrides in ({"per_step_kernels": False}, {"recipe": "ours"}):
        shared = create_method("rasl", DIMS, {**TINY, **overrides}).module.eval()
        with torch.no_grad():
            np.testing.assert_allclose(shared.visual_scores(shifted).numpy(),
                                       torch.roll(shared.visual_scores(rho), shifts=1, dims=1).numpy(), atol=1e-5)
    per_step = create_method("rasl", DIMS, TINY).module.eval()
    with torch.no_grad():
        gap = per_step.visual_scores(shifted) - torch.roll(per_step.visual_scores(rho), shifts=1, dims=1)
    assert float(gap.abs().max()) > 1e-4


def test_prior_weight_fuses_network_ranks_with_the_motion_prior():
    plain = create_method("rasl", DIMS, TINY)
    fused = create_method("rasl", DIMS, {**TINY, "prior_weight": 1.0})
    fused.module.load_state_dict(plain.module.state_dict())
    sample = video(10, 7)
    expected = (rank_unit(plain.predict(sample)) + rank_unit(motion_prior(sample.features["visual"]))) / 2
    np.testing.assert_allclose(fused.predict(sample), expected, atol=1e-6)


def test_loss_ablations_drop_their_terms():
    rho_v, rho_a, keep = torch.rand(2, 4, 16), torch.rand(2, 4, 16), torch.ones(2, 4, dtype=torch.bool)
    full = {"visual_e", "visual_r", "visual_au", "audio_e", "audio_r", "audio_au", "scl"}
    for flag, dropped in (("kpoint_loss", {"visual_r", "audio_r"}), ("aux_loss", {"visual_au", "audio_au"}),
                          ("scl_loss", {"scl"})):
        terms = create_method("rasl", DIMS, {**TINY, flag: False}).losses(rho_v, rho_a, keep)
        assert set(terms) == full - dropped


def test_standardised_sigmoid_ignores_the_scale_and_shift_of_the_logits():
    logits = torch.tensor([[0.3, -1.0, 2.0, 0.5]])
    s = standardised_sigmoid(logits)
    assert float(s.min()) > 0.0 and float(s.max()) < 1.0
    np.testing.assert_allclose(standardised_sigmoid(1e4 * logits + 7.0).numpy(), s.numpy(), rtol=1e-5)
    assert torch.equal(torch.argsort(s), torch.argsort(logits))  # the order of the steps is all that is kept


def test_positive_kernel_init_keeps_the_shared_encoder_alive():
    rho = torch.rand(2, 4, 16)  # non-negative features, like I3D / CNN14 / MobileNet embeddings
    dead = {}
    for init in ("default", "positive"):
        codes = []
        for seed in range(12):
            torch.manual_seed(seed)
            net = create_method("rasl", DIMS, {**TINY, "per_step_kernels": False, "kernel_init": init}).module
            with torch.no_grad():
                codes.append(float(net.branches["visual"].encode(rho).abs().max()))
        dead[init] = sum(code == 0.0 for code in codes)
    assert dead["default"] > 0 and dead["positive"] == 0  # r = 0 on every step: s constant, the fit collapsed


def test_a_checkpoint_saved_before_recipes_loads_as_the_paper_network(tmp_path):
    method = create_method("rasl", DIMS, TINY)
    path = save_checkpoint(method, tmp_path / "old.safetensors", BINDING)
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), "pt") as f:
        meta, state = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    old_config = {k: v for k, v in json.loads(meta["config"]).items() if k not in ("recipe", "activation",
                  "prior_weight", "kernel_init", "kpoint_loss", "aux_loss", "scl_loss")}
    save_file(state, str(path), {**meta, "config": json.dumps({**old_config, "per_step_kernels": True})})
    restored, _ = load_checkpoint(path, BINDING)
    assert restored.config.recipe == "paper"
    sample = video(11, 4)
    np.testing.assert_array_equal(restored.predict(sample), method.predict(sample))
