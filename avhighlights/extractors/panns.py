"""`panns_cnn14` (32 kHz) and `panns_cnn14_16k` (16 kHz): the 2048-d PANNs Cnn14 embedding per
non-overlapping 1-s chunk (ceil(duration) chunks on the 1-s grid, the last zero-padded), batched.

Official checkpoints (Kong et al., PANNs, IEEE/ACM TASLP 2020; Zenodo record 3987831) load with strict=True into
our own `panns_net.Cnn14`; `panns_inference` is deliberately not used (it shells out to wget).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from avhighlights.core.timebase import FeatureTrack, grid_steps
from avhighlights.core.types import MediaSource
from avhighlights.extractors.base import EXTRACTORS, NetworkExtractor, autocast_context
from avhighlights.extractors.logmel import embed_blocks
from avhighlights.extractors.panns_net import Cnn14, Cnn14Spec
from avhighlights.extractors.weights import (
    WeightSpec,
    load_state_dict,
    register_weights,
    resolve_weights,
)

_ZENODO = "https://zenodo.org/record/3987831/files/{}?download=1"
_SOURCE = ("Kong et al., PANNs: Large-Scale Pretrained Audio Neural Networks, TASLP 2020; "
           "github.com/qiuqiangkong/audioset_tagging_cnn")
_NOTE = "sha256 not published by the authors: unverified (Zenodo lists only md5)"
CNN14_32K = register_weights(WeightSpec(
    name="panns_cnn14", filename="Cnn14_mAP=0.431.pth", url=_ZENODO.format("Cnn14_mAP%3D0.431.pth"),
    sha256=None, size_bytes=None, licence="MIT (code); CC BY 4.0 (Zenodo weights)", source=_SOURCE, notes=_NOTE,
))
CNN14_16K = register_weights(WeightSpec(
    name="panns_cnn14_16k", filename="Cnn14_16k_mAP=0.438.pth", url=_ZENODO.format("Cnn14_16k_mAP%3D0.438.pth"),
    sha256=None, size_bytes=None, licence="MIT (code); CC BY 4.0 (Zenodo weights)", source=_SOURCE, notes=_NOTE,
))


@dataclass(frozen=True)
class PannsConfig:
    """Defaults = Cnn14_mAP=0.431 (32 kHz, window 1024, hop 320, 64 mels, 50-14000 Hz)."""

    weights_name: str = CNN14_32K.name
    sample_rate: int = 32000
    window_size: int = 1024
    hop_size: int = 320
    mel_bins: int = 64
    fmin_hz: float = 50.0
    fmax_hz: float = 14000.0
    chunk_s: float = 1.0
    batch_size: int = 16
    weights_path: str | None = None
    random_init: bool = False
    seed: int = 0


@dataclass(frozen=True)
class Panns16kConfig(PannsConfig):
    """Cnn14_16k_mAP=0.438 (16 kHz, window 512, hop 160, 64 mels, 50-8000 Hz)."""

    weights_name: str = CNN14_16K.name
    sample_rate: int = 16000
    window_size: int = 512
    hop_size: int = 160
    fmax_hz: float = 8000.0


@EXTRACTORS.register("panns_cnn14")
class PannsCnn14Extractor(NetworkExtractor):
    version = "1"
    modality = "audio"
    Config = PannsConfig

    @property
    def dim(self) -> int:
        return 2048

    @property
    def hop_s(self) -> float:
        return self.config.chunk_s

    def net_spec(self) -> Cnn14Spec:
        c = self.config
        return Cnn14Spec(c.sample_rate, c.window_size, c.hop_size, c.mel_bins, c.fmin_hz, c.fmax_hz)

    def build_net(self) -> Cnn14:
        net = Cnn14(self.net_spec())
        if not self.config.random_init:
            path = resolve_weights(self.config.weights_name, self.config.weights_path)
            net.load_state_dict(load_state_dict(path), strict=True)
        return net

    def weights_name(self) -> str:
        return self.config.weights_name

    @torch.inference_mode()
    def embed_batch(self, waves: np.ndarray) -> np.ndarray:
        """(B, N) waveforms -> (B, 2048) embeddings."""
        with autocast_context(self.device):
            _, embedding = self.net(torch.from_numpy(waves).to(self.device))  # (B, 2048)
        return embedding.float().cpu().numpy()

    def extract(self, media: MediaSource) -> FeatureTrack:
        c = self.config
        n_steps = grid_steps(media.info.duration_s, c.chunk_s)
        rows = embed_blocks(media, c.sample_rate, int(round(c.chunk_s * c.sample_rate)), n_steps, c.batch_size,
                            self.embed_batch)
        return FeatureTrack.regular(np.concatenate(rows), hop_s=c.chunk_s, name=self.name)


@EXTRACTORS.register("panns_cnn14_16k")
class PannsCnn14_16kExtractor(PannsCnn14Extractor):  # noqa: N801 - mirrors the checkpoint's name
    Config = Panns16kConfig
