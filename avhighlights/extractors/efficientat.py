"""`efficientat_mn04`: EfficientAT mn04_as (AudioSet mAP 0.432) on non-overlapping 1-s windows of 32-kHz audio.

Row layout (dim 911 with the default `with_probabilities=True`): columns [0, 384) are the pooled embedding,
columns [384, 911) the 527 sigmoid AudioSet tag probabilities in `AUDIOSET_LABELS` order. With
`with_probabilities=False` the row is the 384-d embedding only. Row i covers [i, i+1) s; the last window is
zero-padded.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from avhighlights.core.timebase import FeatureTrack, grid_steps
from avhighlights.core.types import MediaSource
from avhighlights.extractors.base import EXTRACTORS, NetworkExtractor, autocast_context
from avhighlights.extractors.efficientat_net import EfficientATFrontEnd, EfficientATMN
from avhighlights.extractors.logmel import embed_blocks
from avhighlights.extractors.weights import (
    WeightSpec,
    load_state_dict,
    register_weights,
    resolve_weights,
)

MN04_WEIGHTS = register_weights(WeightSpec(
    name="efficientat_mn04_as",
    filename="mn04_as_mAP_432.pt",
    url="https://github.com/fschmid56/EfficientAT/releases/download/v0.0.1/mn04_as_mAP_432.pt",
    sha256="899a8c6217063f6941793102a2780b3dd788ab11fce468d9cf5f0577c453321c",
    size_bytes=4_066_513,
    licence="MIT",
    source="Schmid et al., Efficient Large-Scale Audio Tagging via Transformer-to-CNN Knowledge Distillation, "
           "ICASSP 2023; github.com/fschmid56/EfficientAT",
    notes="sha256 from /work/shared/weights/efficientat_mn04_as/SOURCES.md (re-commit of the official asset)",
))
LABELS_FILE = register_weights(WeightSpec(
    name="audioset_labels",
    filename="class_labels_indices.csv",
    url="https://raw.githubusercontent.com/fschmid56/EfficientAT/main/metadata/class_labels_indices.csv",
    sha256="cdd1049833c4b86127c2773ac0d14a2754b6a6d0d1798002ed5c66e699708429",
    size_bytes=14_675,
    licence="CC BY 4.0 (AudioSet ontology, Google)",
    source="AudioSet class_labels_indices.csv",
))


@functools.lru_cache(maxsize=4)
def audioset_labels(path: str | Path | None = None) -> tuple[str, ...]:
    """The 527 AudioSet display names in model output order."""
    with open(resolve_weights(LABELS_FILE.name, path), newline="") as handle:
        rows = list(csv.DictReader(handle))
    return tuple(row["display_name"] for row in sorted(rows, key=lambda r: int(r["index"])))


def __getattr__(name: str):
    if name == "AUDIOSET_LABELS":  # resolved lazily: the csv comes from the weights folder / cache
        return audioset_labels()
    raise AttributeError(name)


@dataclass(frozen=True)
class EfficientATConfig:
    sample_rate: int = 32000
    window_s: float = 1.0
    with_probabilities: bool = True
    batch_size: int = 32
    weights_path: str | None = None
    random_init: bool = False
    seed: int = 0


@EXTRACTORS.register("efficientat_mn04")
class EfficientATExtractor(NetworkExtractor):
    """384-d embedding (+ 527 tag probabilities) per 1-s window."""

    version = "1"
    modality = "audio"
    Config = EfficientATConfig

    def __init__(self, config=None, device=None):
        super().__init__(config, device)
        self.front_end = EfficientATFrontEnd(sample_rate=self.config.sample_rate).to(self.device)

    @property
    def embed_dim(self) -> int:
        return self.net.embed_dim

    @property
    def dim(self) -> int:
        return self.embed_dim + (self.net.classifier[-1].out_features if self.config.with_probabilities else 0)

    @property
    def hop_s(self) -> float:
        return self.config.window_s

    def build_net(self) -> EfficientATMN:
        net = EfficientATMN()
        if not self.config.random_init:
            net.load_state_dict(load_state_dict(resolve_weights(MN04_WEIGHTS.name, self.config.weights_path)))
        return net

    def weights_name(self) -> str:
        return MN04_WEIGHTS.name

    def weight_names(self) -> tuple[str, ...]:
        return MN04_WEIGHTS.name, LABELS_FILE.name  # the label file names the tag probabilities

    @torch.inference_mode()
    def embed_batch(self, waves: np.ndarray) -> np.ndarray:
        """(B, N) waveforms -> (B, dim) rows."""
        wave = torch.from_numpy(waves).to(self.device)  # (B, N)
        with autocast_context(self.device):
            logits, embedding = self.net(self.front_end(wave)[:, None])  # (B, 527), (B, 384)
        parts = [embedding.float()]
        if self.config.with_probabilities:
            parts.append(torch.sigmoid(logits.float()))
        return torch.cat(parts, dim=1).cpu().numpy()

    def extract(self, media: MediaSource) -> FeatureTrack:
        c = self.config
        n_steps = grid_steps(media.info.duration_s, c.window_s)
        rows = embed_blocks(media, c.sample_rate, int(round(c.window_s * c.sample_rate)), n_steps, c.batch_size,
                            self.embed_batch)
        return FeatureTrack.regular(np.concatenate(rows), hop_s=c.window_s, name=self.name)
