"""Joint-VA network and supervised method: shapes, masking, sentinel, ablations, checkpoints, learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from avhighlights.core.errors import ConfigError
from avhighlights.core.sample import FeatureSource, Sample
from avhighlights.models.base import create_method
from avhighlights.models.checkpoint import load_checkpoint, save_checkpoint
from avhighlights.models.joint_va import JointVAMethod, JointVANet, soft_labels, validation_ap
from avhighlights.models.torch_method import collate

DIMS = {"visual": 12, "audio": 10}
TINY = {"d_model": 16, "heads": 2, "fc_hidden": 8}


def make_sample(video_id: str, n_steps: int, rng: np.random.Generator, signal: float = 0.0) -> Sample:
    """Random features; with `signal`, audio dim 0 is +signal on highlights and -signal elsewhere."""
    labels = (rng.random(n_steps) < 0.4).astype(np.float32)
    visual = rng.normal(size=(n_steps, DIMS["visual"])).astype(np.float32)
    audio = rng.normal(size=(n_steps, DIMS["audio"])).astype(np.float32)
    audio[:, 0] += signal * (2 * labels - 1)
    return Sample(video_id, {"visual": visual, "audio": audio}, 2.0, labels=labels)


def tiny_method(**overrides) -> JointVAMethod:
    torch.manual_seed(0)
    return create_method("joint_va", DIMS, {**TINY, **overrides})


def test_network_shapes_streams_and_padded_logits():
    torch.manual_seed(0)
    net = JointVANet(12, 10, d_model=16, heads=2, fc_hidden=8)
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    logits = net(torch.randn(2, 6, 12), torch.randn(2, 6, 10), mask)
    assert logits.shape == (2, 6) and torch.all(logits[1, 4:] == 0)
    weights = net.stream_weights()
    assert weights.shape == (4,) and weights.sum().item() == pytest.approx(1.0)
    assert net.bimodal["a2v"].sentinel is not None


def test_sentinel_off_and_extra_layers_change_structure():
    net = JointVANet(12, 10, d_model=16, heads=2, noise_sentinel=False, extra_self_attention=1, extra_fc=1, fc_hidden=8)
    assert net.bimodal["v2a"].sentinel is None
    assert len(net.self_attn["visual"]) == 2
    assert sum(isinstance(m, torch.nn.Linear) for m in net.regressor) == 3


def test_unimodal_network_accepts_missing_other_modality():
    net = JointVANet(12, 10, d_model=16, heads=2, fc_hidden=8, modalities=("audio",))
    logits = net(None, torch.randn(1, 5, 10), torch.ones(1, 5, dtype=torch.bool))
    assert logits.shape == (1, 5) and len(net.bimodal) == 0 and net.stream_weights().shape == (1,)
    with pytest.raises(ValueError, match="audio"):
        net(torch.randn(1, 5, 12), None, torch.ones(1, 5, dtype=torch.bool))


@pytest.mark.parametrize("overrides", [{}, {"noise_sentinel": False}, {"modalities": ("visual",)},
                                       {"extra_self_attention": 1, "extra_fc": 1}])
def test_padding_never_changes_scores(overrides):
    method = tiny_method(**overrides)
    method.module.eval()
    rng = np.random.default_rng(1)
    short, long = make_sample("a", 5, rng), make_sample("b", 9, rng)
    with torch.no_grad():
        together = method.forward_scores(collate([short, long], method.roles))
    np.testing.assert_allclose(together[0, :5].numpy(), method.predict(short), atol=1e-5)
    np.testing.assert_allclose(together[1].numpy(), method.predict(long), atol=1e-5)


def test_soft_label_mode_trains():
    rng = np.random.default_rng(2)
    samples = [make_sample(f"v{i}", 12, rng) for i in range(3)]
    for s in samples:
        s.labels = rng.random(s.n_steps).astype(np.float32)
    report = tiny_method(label_mode="soft", epochs=2).fit(samples)
    assert len(report["train_loss"]) == 2 and all(np.isfinite(report["train_loss"]))
    np.testing.assert_allclose(soft_labels(np.array([-0.5, 0.25, 1.5])), [0.0, 0.25, 1.0])


def test_bad_options_raise_config_error():
    with pytest.raises(ConfigError, match="label_mode"):
        tiny_method(label_mode="ranked")
    with pytest.raises(ConfigError, match="modalities"):
        tiny_method(modalities=())


def test_checkpoint_round_trip_gives_identical_predictions(tmp_path):
    method = tiny_method(epochs=1, modalities=["visual", "audio"])
    rng = np.random.default_rng(3)
    method.fit([make_sample("v0", 20, rng)])
    binding = {"visual": FeatureSource("r3d34", "1", "extractor", 12),
               "audio": FeatureSource("panns_cnn14_16k", "1", "extractor", 10)}
    path = save_checkpoint(method, tmp_path / "jva.safetensors", binding, {"seed": 0})
    restored, info = load_checkpoint(path, binding)
    probe = make_sample("probe", 11, rng)
    assert info.method == "joint_va" and restored.config.modalities == ("visual", "audio")
    np.testing.assert_array_equal(restored.predict(probe), method.predict(probe))


def test_learns_synthetic_highlights_and_selects_best_epoch():
    rng = np.random.default_rng(4)
    train = [make_sample(f"tr{i}", int(rng.integers(20, 35)), rng, signal=2.0) for i in range(10)]
    test = [make_sample(f"te{i}", 30, rng, signal=2.0) for i in range(4)]
    method = tiny_method(epochs=12, lr=3e-3, batch_size=4)
    report = method.fit(train, val=test[:2])
    aps = [average_precision_score(s.labels, method.predict(s)) for s in test]
    assert report["train_loss"][-1] < report["train_loss"][0]
    assert 0 <= report["best_epoch"] < 12
    assert report["best_val_ap"] == pytest.approx(validation_ap(method, test[:2]))
    assert np.mean(aps) > 0.95
