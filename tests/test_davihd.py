"""DAViHD: FDY convolution and TAP hand checks, network shapes, masking, ablations, initialisation,
parameter counts, masked MSE, training, checkpoints, the raw-video TVSum dataset and bench."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avhighlights.core.errors import ConfigError
from avhighlights.core.sample import FeatureSource, Sample
from avhighlights.models.base import create_method
from avhighlights.models.checkpoint import load_checkpoint, save_checkpoint
from avhighlights.models.davihd import PRESETS, masked_mse, resolve_hparams, validation_f1
from avhighlights.models.davihd_net import DAViHDNet, DAViHDShape, davihd_init_, parameter_count
from avhighlights.models.fdy import (
    BN_MOMENTUM,
    TEMPERATURE,
    DynamicsCNN,
    FDYConv2d,
    KernelAttention,
    TemporalAttentionPooling,
    frame_differences,
    replicate_pad_time,
)
from avhighlights.models.torch_method import collate
from avhighlights.models.transformer_blocks import PreNormEncoder, sinusoidal_encoding

N_MELS = 64
DIMS = {"visual": 16, "audio": 32, "logmel": N_MELS}
TINY = {"dynamics_dim": 32, "heads": 2, "dynamics_heads": 2, "epochs": 2, "batch_size": 2}


def tiny_shape(**overrides) -> DAViHDShape:
    base = {"visual_dim": 16, "semantic_dim": 32, "n_mels": N_MELS, "dynamics_dim": 32, "heads": 2,
            "dynamics_heads": 2}
    return DAViHDShape(**{**base, **overrides})


def make_sample(video_id: str, n_steps: int, rng: np.random.Generator) -> Sample:
    feats = {role: rng.normal(size=(n_steps, dim)).astype(np.float32) for role, dim in DIMS.items()}
    return Sample(video_id, feats, 1.0, labels=rng.random(n_steps).astype(np.float32))


def tiny_method(**overrides):
    torch.manual_seed(0)
    return create_method("davihd", DIMS, {**TINY, **overrides})


# --- FDY and TAP -------------------------------------------------------------------------------

def test_frame_differences_first_step_is_zero_not_circular():
    x = torch.tensor([1.0, 4.0, 2.0, 7.0]).view(1, 1, 4, 1)
    np.testing.assert_allclose(frame_differences(x).flatten().numpy(), [0.0, 3.0, 2.0, 5.0])


def test_tap_descriptor_matches_its_formula_and_softmaxes_run_over_time():
    torch.manual_seed(0)
    tap = TemporalAttentionPooling(8).eval()
    x = torch.randn(2, 8, 6, 5)
    gate, alpha, beta = tap.maps(x)
    torch.testing.assert_close(alpha.sum(dim=2), torch.ones(2, 8, 5))
    torch.testing.assert_close(beta.sum(dim=2), torch.ones(2, 8, 5))
    assert bool(((gate > 0) & (gate < 1)).all())
    expected = (gate * alpha).sum(2) + (gate * beta).sum(2) + x.mean(2)
    torch.testing.assert_close(tap(x), expected)


def test_velocity_attention_ignores_a_constant_offset_but_not_a_jump():
    torch.manual_seed(0)
    tap = TemporalAttentionPooling(4).eval()
    x = torch.randn(1, 4, 6, 3)
    _, _, beta = tap.maps(x)
    _, _, beta_shifted = tap.maps(x + 5.0)  # same frame differences
    torch.testing.assert_close(beta, beta_shifted)
    jumped = x.clone()
    jumped[:, :, 3] += 10.0
    assert not torch.allclose(tap.maps(jumped)[2], beta)


def test_kernel_weights_are_a_temperature_31_softmax_summing_to_one_over_k():
    torch.manual_seed(0)
    attention = KernelAttention(8).eval()
    x = torch.randn(2, 8, 5, 6)
    gamma = attention(x)
    logits = attention.logits(attention.pool(x))  # (B, K, F)
    assert gamma.shape == (2, 4, 6) and attention.temperature == TEMPERATURE == 31.0
    torch.testing.assert_close(gamma, torch.softmax(logits / 31.0, dim=1))
    torch.testing.assert_close(gamma.sum(dim=1), torch.ones(2, 6))


def test_fdy_conv_is_the_gamma_weighted_sum_of_basis_convolutions():
    torch.manual_seed(0)
    conv = FDYConv2d(3, 5).eval()
    x = torch.randn(2, 3, 6, 7)
    gamma = conv.attention(x)  # (B, K, F)
    expected = sum(gamma[:, k, None, None, :] * F.conv2d(x, conv.weight[k], padding=1) for k in range(4))
    torch.testing.assert_close(conv(x), expected)
    assert conv.weight.shape == (4, 5, 3, 3, 3)


def test_dynamics_cnn_shapes_and_replicate_padding():
    cnn = DynamicsCNN(128).eval()
    out = cnn(torch.randn(1, 1, 12, 128))
    assert out.shape == (1, 128, 3, 2) and cnn.out_dim == 256
    padded = replicate_pad_time(torch.arange(6.0).view(2, 3))
    np.testing.assert_allclose(padded.numpy(), [[0, 1, 2], [3, 4, 5], [3, 4, 5], [3, 4, 5]])
    assert replicate_pad_time(torch.zeros(7, 3)).shape == (7, 3)


def stage_norms(module: torch.nn.Module) -> list[torch.nn.BatchNorm2d]:
    """The six stage BatchNorms of every DynamicsCNN inside `module`."""
    return [stage.norm for cnn in module.modules() if isinstance(cnn, DynamicsCNN) for stage in cnn.stages]


def test_bn_switches_reach_every_stage_batchnorm_of_the_dynamics_cnn():
    default = tiny_method(modalities=["dynamics"])
    assert default.config.bn_momentum == BN_MOMENTUM == 0.99  # spec §1.3 row 3 / authors' code parity
    norms = stage_norms(default.module)
    assert len(norms) == 6 and all(n.momentum == 0.99 and n.eps == 1e-3 for n in norms)
    for config in ({"modalities": ["dynamics"]}, {}, {"sa_mode": "late"}):
        method = tiny_method(**config, bn_momentum=0.01)
        norms = stage_norms(method.module)
        assert len(norms) == 6 and all(n.momentum == 0.01 and n.eps == 1e-3 for n in norms), config
        # the attention blocks' BatchNorms (TAP, kernel attention) are not stage norms: torch's default
        others = [m for m in method.module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                  and not any(m is n for n in norms)]
        assert others and all(m.momentum == 0.1 for m in others)
    with pytest.raises(ConfigError, match="bn_momentum"):
        tiny_method(modalities=["dynamics"], bn_momentum=1.5)
    assert all(n.track_running_stats for n in stage_norms(default.module))
    per_clip = tiny_method(modalities=["dynamics"], bn_running_stats=False).module.eval()
    norms = stage_norms(per_clip)
    assert len(norms) == 6 and all(not n.track_running_stats and n.running_mean is None for n in norms)
    cnn = DynamicsCNN(64, bn_running_stats=False).eval()  # eval mode normalises by the clip's own stats
    x = torch.randn(1, 1, 8, 64)
    torch.testing.assert_close(cnn.stages[0].norm(cnn.stages[0].conv(x)),
                               F.batch_norm(cnn.stages[0].conv(x), None, None, cnn.stages[0].norm.weight,
                                            cnn.stages[0].norm.bias, training=True, eps=1e-3))
    # eval-mode stats: with 0.99 they are (almost) the last batch's, with 0.01 an average
    for momentum, expected_close in ((0.99, True), (0.01, False)):
        cnn = DynamicsCNN(64, bn_momentum=momentum).train()
        cnn(torch.randn(1, 1, 8, 64))
        last = torch.randn(1, 1, 8, 64) * 5 + 3
        cnn(last)
        batch_mean = cnn.stages[0].conv(last).detach().mean(dim=(0, 2, 3))
        close = torch.allclose(cnn.stages[0].norm.running_mean, batch_mean, atol=0.05 * float(batch_mean.abs().max()))
        assert close == expected_close, momentum


# --- transformer pieces ------------------------------------------------------------------------

def test_positional_encoding_extends_beyond_5000_steps():
    table = sinusoidal_encoding(6001, 8)
    assert table.shape == (6001, 8) and torch.isfinite(table).all()
    torch.testing.assert_close(table[5500, 0], torch.tensor(math.sin(5500.0)))
    torch.testing.assert_close(table[:10], sinusoidal_encoding(10, 8))


def test_pre_norm_stack_has_no_final_norm_and_zeroes_padding():
    stack = PreNormEncoder(8, heads=2, ffn_hidden=16, dropout=0.0, layers=2).eval()
    assert all(layer.norm_first for layer in stack.layers)
    assert not any(name.startswith("norm") for name, _ in stack.named_children())
    mask = torch.tensor([[True, True, True, False]])
    out = stack(torch.randn(1, 4, 8), mask)
    assert torch.all(out[0, 3] == 0)


# --- network -----------------------------------------------------------------------------------

ABLATIONS = [
    {},
    {"modalities": ("visual",)},
    {"modalities": ("semantic",)},
    {"modalities": ("dynamics",)},
    {"modalities": ("visual", "semantic")},
    {"modalities": ("visual", "dynamics")},
    {"modalities": ("semantic", "dynamics")},
    {"sa_mode": "late"},
    {"fusion": "concat"},
    {"sa_mode": "late", "fusion": "concat"},
]


@pytest.mark.parametrize("overrides", ABLATIONS)
def test_every_ablation_builds_forwards_and_ignores_padding(overrides):
    method = tiny_method(**overrides)
    method.module.eval()
    rng = np.random.default_rng(1)
    short, long = make_sample("a", 3, rng), make_sample("b", 9, rng)
    with torch.no_grad():
        together = method.forward_scores(collate([short, long], method.roles))
    assert together.shape == (2, 9) and torch.all(together[0, 3:] == 0)
    assert bool(((together[1] > 0) & (together[1] < 1)).all())
    np.testing.assert_allclose(together[0, :3].numpy(), method.predict(short), atol=1e-5)
    np.testing.assert_allclose(together[1].numpy(), method.predict(long), atol=1e-5)


def test_roles_follow_modalities_and_missing_roles_are_named():
    assert tiny_method(modalities=["visual", "semantic"]).roles == ("visual", "audio")
    assert tiny_method(modalities=["dynamics"]).roles == ("logmel",)
    with pytest.raises(ConfigError, match="logmel"):
        create_method("davihd", {"visual": 16, "audio": 32}, TINY)
    with pytest.raises(ConfigError, match="modalities"):
        tiny_method(modalities=["visual", "speech"])
    with pytest.raises(ConfigError, match="D_s = D_d"):
        tiny_method(dynamics_dim=64)
    with pytest.raises(ConfigError, match="sa_mode"):
        tiny_method(sa_mode="middle")


def test_mlp_width_follows_the_spec():
    assert DAViHDNet(tiny_shape()).mlp_width() == 2 * (16 + 32)
    assert DAViHDNet(tiny_shape(modalities=("visual",))).mlp_width() == 16
    assert DAViHDNet(tiny_shape(modalities=("dynamics",))).mlp_width() == 32


def test_initialisation_rules_by_parameter_name():
    net = DAViHDNet(tiny_shape())
    params = dict(net.named_parameters())
    for name, param in params.items():
        if name.endswith("bias") or name.endswith("_bias"):
            assert torch.all(param == 0.1), name
    assert torch.all(params["visual_sa.norm1.weight"] == 1.0)
    assert torch.all(params["audio.dynamics.cnn.stages.2.norm.weight"] == 1.0)
    for name in ("score_mlp.1.weight", "audio.dynamics.cnn.stages.3.conv.attention.pool.g_alpha.1.weight",
                 "audio.dynamics.cnn.stages.3.conv.attention.logits.1.weight"):
        assert params[name].abs().max() <= 0.1 and not torch.all(params[name] == 1.0), name
    basis = params["audio.dynamics.cnn.stages.1.conv.weight"]  # (K, C_out, C_in, 3, 3)
    fan_in, fan_out = basis.shape[1] * 9 * basis.shape[2], basis.shape[0] * 9 * basis.shape[2]
    assert basis.abs().max() <= math.sqrt(2.0) * math.sqrt(6.0 / (fan_in + fan_out)) + 1e-6
    mlp = params["score_mlp.0.weight"]
    assert mlp.abs().max() <= math.sqrt(2.0) * math.sqrt(6.0 / sum(mlp.shape)) + 1e-6
    assert mlp.abs().max() > 0.5 * math.sqrt(2.0) * math.sqrt(6.0 / sum(mlp.shape))  # not N(0, 0.02)


def test_init_is_idempotent_in_kind():
    net = DAViHDNet(tiny_shape(modalities=("visual",)))
    davihd_init_(net)
    assert torch.all(net.visual_sa.self_attn.in_proj_bias == 0.1)


def test_parameter_counts_of_the_published_model():
    assert round(parameter_count(DAViHDShape(visual_dim=512)) / 1e6, 1) == 188.9
    assert round(parameter_count(DAViHDShape(visual_dim=1024)) / 1e6, 1) == 207.5


# --- training ----------------------------------------------------------------------------------

def test_masked_mse_is_a_mean_over_all_valid_steps_of_the_batch():
    scores = torch.tensor([[0.5, 1.0, 0.0], [0.0, 0.0, 0.0]])
    labels = torch.tensor([[1.0, 1.0, 7.0], [1.0, 0.0, 5.0]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    # valid squared errors: 0.25, 0, 1 -> 1.25 / 3 (a mean of per-video means would give 0.5625)
    assert float(masked_mse(scores, labels, mask)) == pytest.approx(1.25 / 3)


def test_presets_and_overrides():
    method = tiny_method(preset="code", epochs=3)
    assert resolve_hparams(method.config) == {**PRESETS["code"], "epochs": 3, "batch_size": 2}
    assert PRESETS["paper_tvsum"]["lr"] == 5e-6 and PRESETS["paper_tvsum"]["grad_clip"] == 0.5
    with pytest.raises(ConfigError, match="preset"):
        tiny_method(preset="fast")


def test_fit_drops_the_last_batch_skips_non_finite_batches_and_reports():
    rng = np.random.default_rng(3)
    train = [make_sample(f"t{i}", 6 + i, rng) for i in range(5)]
    train[4].features["audio"][2, 0] = np.nan
    method = tiny_method(preset="code", batch_size=2, epochs=3)
    report = method.fit(train, train[:2], seed=0)
    assert len(report["train_loss"]) == 3 and report["best_epoch"] in (0, 1, 2)
    assert report["skipped_batches"] <= 3 and report["hyperparameters"]["lr"] == 5e-5
    assert 0.0 <= report["best_val_f1"] <= 1.0
    assert np.all(np.isfinite(method.predict(train[0])))


def test_training_reduces_the_loss_on_a_learnable_signal():
    rng = np.random.default_rng(4)
    train = []
    for i in range(4):
        sample = make_sample(f"s{i}", 10, rng)
        sample.features["visual"][:, 0] = 3.0 * (2 * sample.labels - 1)
        train.append(sample)
    method = tiny_method(modalities=["visual"], preset="code", lr=1e-3, epochs=30, batch_size=4)
    report = method.fit(train, seed=0)
    assert report["train_loss"][-1] < 0.5 * report["train_loss"][0]


def test_validation_f1_skips_all_zero_label_videos():
    rng = np.random.default_rng(5)
    method = tiny_method()
    empty = make_sample("z", 6, rng)
    empty.labels = np.zeros(6, dtype=np.float32)
    assert validation_f1(method, [empty]) == 0.0
    value = validation_f1(method, [make_sample("a", 6, rng), empty])
    assert 0.0 <= value <= 1.0


def test_checkpoint_round_trip(tmp_path):
    method = tiny_method(sa_mode="late", fusion="concat")
    rng = np.random.default_rng(6)
    sample = make_sample("c", 7, rng)
    binding = {role: FeatureSource(f"src_{role}", "1", "dataset", dim) for role, dim in DIMS.items()}
    path = save_checkpoint(method, tmp_path / "davihd.safetensors", binding, {"note": "test"})
    loaded, info = load_checkpoint(path)
    assert info.method == "davihd" and info.config["fusion"] == "concat" and loaded.roles == method.roles
    np.testing.assert_allclose(loaded.predict(sample), method.predict(sample), atol=1e-6)


# --- raw-video TVSum dataset and bench ---------------------------------------------------------

def write_tvsum_layout(root, video, ids, n_frames=300):
    """Copies of `video` as <root>/videos/<id>.mp4 and a hand-written annotation TSV (2 annotators)."""
    (root / "videos").mkdir(parents=True)
    rows = []
    for i, vid in enumerate(ids):
        shutil.copy(video, root / "videos" / f"{vid}.mp4")
        for annotator in range(2):
            scores = np.ones(n_frames, dtype=int)
            scores[(i * 30 + annotator * 10) % n_frames:][:60] = 5
            rows.append(f"{vid}\tCAT{i % 2}\t" + ",".join(map(str, scores)))
    (root / "ydata-tvsum50-anno.tsv").write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def tiny_tvsum_videos(tmp_path_factory, synthetic_video):
    from avhighlights.evaluation.tvsum_videos_data import (
        TVSumVideosDataset,
        extractor_feature_sources,
        store_features_for,
    )
    from avhighlights.extractors.base import create_extractor
    from avhighlights.extractors.store import FeatureStore

    root = tmp_path_factory.mktemp("tvsum_videos")
    write_tvsum_layout(root, synthetic_video, [f"vid{i}" for i in range(5)])
    extractors = {"visual": create_extractor("loudness"), "logmel": create_extractor("logmel", {"n_mels": N_MELS})}
    store = FeatureStore(root / "store")
    return TVSumVideosDataset(root, store_features_for(extractors, store), extractor_feature_sources(extractors))


def test_tvsum_videos_dataset_reads_layout_and_labels(tiny_tvsum_videos):
    ds = tiny_tvsum_videos
    assert ds.video_ids() == [f"vid{i}" for i in range(5)]
    sample = ds.sample("vid0")
    assert sample.n_steps == 20 and set(sample.features) == {"visual", "logmel"}
    assert sample.features["logmel"].shape == (20, N_MELS) and sample.group == "CAT0"
    # frames 0..59 of 300 scored 5 by annotator 0 and frames 10..69 by annotator 1; L = 20 s, so
    # second t sits at frame t * 299 / 19: t = 0 -> mean score 3 -> 0.5, t = 1 (frame 15.7) -> 1, t = 19 -> 0
    np.testing.assert_allclose(sample.labels[[0, 1, 19]], [0.5, 1.0, 0.0], atol=1e-6)
    folds = ds.kfold_splits(42)
    assert len(folds) == 5 and sorted(v for f in folds for v in f.test_ids) == ds.video_ids()


def test_bench_smoke_on_raw_videos(tiny_tvsum_videos, tmp_path):
    from avhighlights.evaluation.bench import run_bench

    overrides = {"modalities": ["visual", "dynamics"], "dynamics_dim": 16, "heads": 1, "dynamics_heads": 2,
                 "epochs": 1, "batch_size": 2, "preset": "code"}
    with pytest.raises(ConfigError, match="audio"):
        run_bench(tmp_path, tiny_tvsum_videos, "davihd", 1, out_dir=tmp_path / "x", method_overrides=TINY)
    result = run_bench(tmp_path, tiny_tvsum_videos, "davihd", 1, out_dir=tmp_path / "out",
                       method_overrides=overrides)
    summary = result.summary
    assert result.json_path.is_file() and result.config["protocol"] == "davihd_5fold_1fps"
    assert len(result.per_seed[42]) == 5
    assert "f1_top50" in str(summary) and "rho" in str(summary)


def test_score_a_video_from_a_checkpoint(tmp_path, synthetic_video):
    from avhighlights.extractors.base import create_extractor
    from avhighlights.pipeline.extract import extract_features
    from avhighlights.pipeline.probe import probe
    from avhighlights.pipeline.score import ScorerSpec, build_sample, prepare_scorer, score_sample

    extractors = {"visual": create_extractor("loudness"), "logmel": create_extractor("logmel")}
    dims = {role: ex.dim for role, ex in extractors.items()}
    torch.manual_seed(0)
    method = create_method("davihd", dims, {**TINY, "modalities": ["visual", "dynamics"], "heads": 1})
    binding = {role: FeatureSource(ex.name, ex.version, "extractor", ex.dim) for role, ex in extractors.items()}
    path = save_checkpoint(method, tmp_path / "davihd.safetensors", binding)
    scorer = prepare_scorer(ScorerSpec(checkpoint=str(path)))
    info = probe(synthetic_video)
    tracks = extract_features(info, list(scorer.extractors.values()))
    sample = build_sample(info, {role: tracks[ex.name] for role, ex in scorer.extractors.items()})
    curve = score_sample(scorer, info, sample)
    assert curve.scores.shape == (20,) and np.all((curve.scores > 0) & (curve.scores < 1))
    np.testing.assert_allclose(curve.scores, method.predict(sample), atol=1e-6)
