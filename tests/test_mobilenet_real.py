"""MobileNet-v1 0.25 (TF-slim, ImageNet) with the real shared weights on frames of the shared clips, decoded by
the package's own media layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avhighlights.extractors import create_extractor
from avhighlights.extractors.mobilenet_v1 import IMAGENET_CLASSES, MOBILENET_V1_025, imagenet_classes
from avhighlights.extractors.mobilenet_v1_net import MobileNetV1
from avhighlights.extractors.weights import load_state_dict
from avhighlights.pipeline.media import open_media
from avhighlights.pipeline.probe import probe


@pytest.fixture(scope="module")
def weights_dir(shared_weights_dir):
    folder = shared_weights_dir / "mobilenet_v1_025_imagenet"
    if not (folder / MOBILENET_V1_025.filename).is_file():
        pytest.skip(f"{MOBILENET_V1_025.filename} not in {folder}")
    return folder


@pytest.fixture(scope="module")
def extractor(weights_dir):
    overrides = {"weights_path": str(weights_dir / MOBILENET_V1_025.filename), "with_probabilities": True}
    return create_extractor("mobilenet_v1_025", overrides, device="cpu")


@pytest.fixture(scope="module")
def classes(weights_dir):
    return imagenet_classes(str(weights_dir / IMAGENET_CLASSES.filename))


def _track(extractor, path):
    with open_media(probe(path)) as media:
        track = extractor.extract(media)
    assert track.dim == extractor.dim == 256 + 1001
    return track.values[:, :256], track.values[:, 256:]  # (T, 256) features, (T, 1001) probabilities


def test_checkpoint_loads_strict_with_the_published_parameter_count(weights_dir):
    state = load_state_dict(weights_dir / MOBILENET_V1_025.filename)
    net = MobileNetV1()
    net.load_state_dict(state, strict=True)
    assert len(state) == 164
    assert sum(p.numel() for p in net.parameters()) == 470_329  # SOURCES.md
    assert net.embed_dim == 256


def test_registered_sha_is_the_identity_and_matches_the_file(extractor):
    assert extractor.weights_sha256() == MOBILENET_V1_025.sha256
    assert extractor.net.features[0].bn.eps == 1e-3


def test_class_names(classes):
    assert len(classes) == 1000
    assert classes[0].startswith("tench") and classes[-1].startswith("toilet tissue")


def test_flower_close_up_is_recognised_as_a_rose_hip(extractor, classes, media_dir):
    """A red bud in close-up: 'hip, rose hip' is among the top-3 classes of the clip-mean probabilities, and
    every frame's top-1 is a plant/insect close-up class (butterfly, bee, cardoon, rose hip)."""
    _, probs = _track(extractor, media_dir / "flower_nature_silent_audio_5s.mp4")
    assert probs.shape == (5, 1001)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    mean_top3 = [classes[k - 1] for k in np.argsort(probs.mean(axis=0))[::-1][:3]]
    assert "hip, rose hip, rosehip" in mean_top3
    nature = {"sulphur butterfly, sulfur butterfly", "hip, rose hip, rosehip", "bee", "cardoon"}
    assert {classes[k - 1] for k in probs.argmax(axis=1)} <= nature


def test_static_colour_bars_give_a_stable_class_and_near_identical_features(extractor, media_dir):
    feats, probs = _track(extractor, media_dir / "smpte_bars_tone_sync_10s.mp4")
    assert len(set(probs.argmax(axis=1).tolist())) == 1
    cos = feats @ feats[0] / (np.linalg.norm(feats, axis=1) * np.linalg.norm(feats[0]))  # (T,)
    assert cos.min() > 0.99


def test_features_separate_different_clips(extractor, media_dir):
    bars, _ = _track(extractor, media_dir / "smpte_bars_tone_sync_10s.mp4")
    flower, _ = _track(extractor, media_dir / "flower_nature_silent_audio_5s.mp4")
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    within = float((unit(flower) @ unit(flower).T).min())
    across = float((unit(flower) @ unit(bars).T).max())
    assert across < within - 0.2


def test_same_padding_matches_tensorflow_rule():
    from avhighlights.extractors.mobilenet_v1_net import same_padding

    assert same_padding(128, 3, 2) == (0, 1)  # TF pads only after for even sizes and stride 2
    assert same_padding(127, 3, 2) == (1, 1)
    assert same_padding(64, 3, 1) == (1, 1)
    assert same_padding(8, 1, 1) == (0, 0)
    x = torch.zeros(1, 3, 128, 128)
    assert MobileNetV1().features(x).shape == (1, 256, 4, 4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_bf16_channels_last_matches_cpu_fp32(weights_dir, media_dir):
    """On CUDA the network runs NHWC under bf16 autocast; its pooled features match the CPU fp32 ones."""
    overrides = {"weights_path": str(weights_dir / MOBILENET_V1_025.filename)}
    cpu, gpu = (create_extractor("mobilenet_v1_025", overrides, device=d) for d in ("cpu", "cuda"))
    media = open_media(probe(media_dir / "bbb_animation_music_30s.webm"))
    rows_cpu, rows_gpu = cpu.extract(media).values, gpu.extract(media).values
    conv = next(m for m in gpu.net.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    cosine = (rows_cpu * rows_gpu).sum(1) / (np.linalg.norm(rows_cpu, axis=1) * np.linalg.norm(rows_gpu, axis=1))
    assert cosine.min() > 0.99
