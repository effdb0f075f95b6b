"""EfficientAT mn04_as with the real shared weights on real clips (decoded by the package's own media layer)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from avhighlights.core.types import AudioChunk, VideoInfo
from avhighlights.extractors import create_extractor
from avhighlights.extractors.efficientat import MN04_WEIGHTS, audioset_labels
from avhighlights.extractors.efficientat_net import EfficientATMN
from avhighlights.extractors.weights import load_state_dict
from avhighlights.pipeline.media import open_media
from avhighlights.pipeline.probe import probe


@pytest.fixture(scope="module")
def mn04_dir(shared_weights_dir):
    folder = shared_weights_dir / "efficientat_mn04_as"
    if not (folder / MN04_WEIGHTS.filename).is_file():
        pytest.skip(f"{MN04_WEIGHTS.filename} not in {folder}")
    return folder


@pytest.fixture(scope="module")
def extractor(mn04_dir):
    return create_extractor("efficientat_mn04", {"weights_path": str(mn04_dir / MN04_WEIGHTS.filename)},
                            device="cpu")


@pytest.fixture(scope="module")
def labels(mn04_dir):
    return audioset_labels(str(mn04_dir / "class_labels_indices.csv"))


def _probabilities(extractor, media) -> np.ndarray:
    track = extractor.extract(media)
    assert track.dim == 911 == extractor.dim and track.values.shape[0] == len(track)
    return track.values[:, 384:]  # (T, 527)


def test_checkpoint_loads_strict_with_312_keys(mn04_dir):
    state = load_state_dict(mn04_dir / MN04_WEIGHTS.filename)
    assert len(state) == 312
    net = EfficientATMN()
    net.load_state_dict(state, strict=True)
    assert sum(p.numel() for p in net.parameters()) == 983_599  # SOURCES.md


def test_weights_identity_is_registered_sha(extractor):
    assert extractor.weights_sha256() == MN04_WEIGHTS.sha256


def test_speech_clip_top_tag_is_speech(extractor, labels, media_dir):
    with open_media(probe(media_dir / "his_girl_friday_speech_6s.mp4")) as media:
        probs = _probabilities(extractor, media)
    assert len(labels) == 527 and labels[0] == "Speech"
    top = [labels[i] for i in probs.argmax(axis=1)]
    assert sum(tag == "Speech" for tag in top) > len(top) / 2, top


def test_digital_silence_has_low_probabilities(extractor, labels, media_dir):
    with open_media(probe(media_dir / "flower_nature_silent_audio_5s.mp4")) as media:
        probs = _probabilities(extractor, media)
    assert probs[:, labels.index("Speech")].max() < 0.2
    assert probs.max() < 0.5


class SineMedia:
    """A 4-s 440-Hz sine as a MediaSource (audio only)."""

    def __init__(self, duration_s: float = 4.0):
        self.info = VideoInfo(Path("sine.wav"), "0" * 64, duration_s, Fraction(25), False, 16, 16, 0, "none", True)

    def audio_chunks(self, sample_rate: int, chunk_s: float = 60.0):
        t = np.arange(int(self.info.duration_s * sample_rate)) / sample_rate
        yield AudioChunk(0.0, sample_rate, (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32))


def test_sine_top_tag_is_sine_wave(extractor, labels):
    probs = _probabilities(extractor, SineMedia())
    assert [labels[i] for i in probs.argmax(axis=1)] == ["Sine wave"] * 4


def test_embedding_only_mode(mn04_dir):
    plain = create_extractor("efficientat_mn04", {"weights_path": str(mn04_dir / MN04_WEIGHTS.filename),
                                                  "with_probabilities": False}, device="cpu")
    track = plain.extract(SineMedia(duration_s=2.0))
    assert plain.dim == 384 and track.values.shape == (2, 384)
    assert torch.isfinite(torch.from_numpy(track.values)).all()
