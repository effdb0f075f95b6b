"""The extractor contract (lhotse style): a registered name, a frozen config, a declared output
dim and hop, its own preprocessing, and an identity that keys the feature store."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from avhighlights.core.devices import check_device_name
from avhighlights.core.frame_requests import FrameRequest, MediaRequest
from avhighlights.core.registry import Registry, build_config, config_to_dict
from avhighlights.core.sample import FeatureSource, identity_hash
from avhighlights.core.timebase import FeatureTrack
from avhighlights.core.types import ClipBatch, FrameBatch, MediaSource, VideoInfo
from avhighlights.extractors.weights import Preprocess, get_weight_spec, weights_identity

if TYPE_CHECKING:  # torch is imported where a device or a network is used: weight-free extractors never load it
    import torch

EXTRACTORS: Registry[Extractor] = Registry("extractor")


class Extractor(ABC):
    """Turns decoded media into one `FeatureTrack` of shape (T, dim) with rows every `hop_s`.

    Subclasses set `name` (via `EXTRACTORS.register`, declared in `extractors.DECLARED`), `version` (bump it
    whenever the output changes for the same input), `modality` ("audio" or "visual") and `Config`, a frozen dataclass.
    `runtime_fields` names config fields (batch sizes, streaming chunk lengths) that must not change
    the output and therefore stay out of the feature-store key.
    """

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    # Config fields that change only speed or memory (or where a file is found: its content enters through
    # weights_sha256), never the output: left out of the cache identity.
    runtime_fields: ClassVar[frozenset[str]] = frozenset({"batch_size", "weights_path"})
    modality: ClassVar[str]
    reproduces: ClassVar[tuple[str, ...]] = ()  # dataset feature sources it reproduces (extractors/bridges.py)
    Config: ClassVar[type]

    def __init__(self, config: Any = None, device: str | torch.device | None = None):
        self.config = config if config is not None else self.Config()
        if isinstance(device, str):
            check_device_name(device)  # a typo fails here, before torch is imported
        self._device: str | torch.device | None = device  # resolved on first use of `device`

    @property
    def device(self) -> torch.device:
        """The torch device to run on (default: `default_device()`), resolved on first use."""
        import torch

        if not isinstance(self._device, torch.device):
            self._device = torch.device(self._device) if self._device is not None else default_device()
        return self._device

    @device.setter
    def device(self, device: str | torch.device | None) -> None:
        self._device = device

    @property
    @abstractmethod
    def dim(self) -> int:
        """Width of one output row."""

    @property
    @abstractmethod
    def hop_s(self) -> float:
        """Seconds between consecutive rows; row i covers [i * hop_s, (i + 1) * hop_s)."""

    @abstractmethod
    def extract(self, media: MediaSource) -> FeatureTrack:
        """Features for the whole video, computed in bounded-memory batches."""

    def media_request(self, info: VideoInfo) -> MediaRequest | None:
        """The frames this extractor needs, declared before decoding, so `pipeline.extract` can serve several
        extractors from one decode (`RequestExtractor`); None (the default): it pulls them itself in `extract`."""
        return None

    def weights_sha256(self) -> str | None:
        """sha256 of the weights the output depends on (None for weight-free extractors)."""
        return None

    def weight_names(self) -> tuple[str, ...]:
        """Registered weight files (see `extractors.weights`) this extractor loads; () for weight-free ones."""
        return ()

    def identity(self) -> dict[str, Any]:
        """Everything the output depends on besides the video content."""
        return {
            "extractor": self.name,
            "version": self.version,
            "config": {k: v for k, v in config_to_dict(self.config).items() if k not in self.runtime_fields},
            "weights_sha256": self.weights_sha256(),
        }

    def identity_hash(self) -> str:
        return identity_hash(self.identity())

    def feature_source(self) -> FeatureSource:
        """What a checkpoint trained on this extractor's features binds: name, version, dim and full identity."""
        return FeatureSource(self.name, self.version, "extractor", self.dim, self.identity())


class NetworkExtractor(Extractor):
    """An extractor around one network, built lazily (seeded with `config.seed`, in eval mode, on the device), whose
    weights enter the identity by their hash. Configs carry `weights_path`, `random_init`, `seed` and `batch_size`;
    subclasses give `build_net` and `weights_name` (the registered `WeightSpec`)."""

    runtime_fields = frozenset({"batch_size", "weights_path"})  # the weights enter by their sha256
    channels_last: ClassVar[bool] = False  # 2-D CNNs set it: on CUDA the network runs in NHWC memory format

    def __init__(self, config: Any = None, device: str | torch.device | None = None):
        super().__init__(config, device)
        self._device = self.device  # resolved now: a bad device fails when the network extractor is built
        self._net: torch.nn.Module | None = None

    @property
    def net(self) -> torch.nn.Module:
        import torch

        if self._net is None:
            torch.manual_seed(self.config.seed)
            net = self.build_net().eval().to(self.device)
            if self.channels_last and self.device.type == "cuda":
                net = net.to(memory_format=torch.channels_last)
            self._net = net
        return self._net

    @abstractmethod
    def build_net(self) -> torch.nn.Module:
        """The network, with its pretrained weights loaded unless `config.random_init`."""

    @abstractmethod
    def weights_name(self) -> str:
        """The registered weights this configuration loads."""

    def weight_names(self) -> tuple[str, ...]:
        return (self.weights_name(),)

    @property
    def preprocess(self) -> Preprocess | None:
        """The input normalisation the weights expect (from their `WeightSpec`)."""
        return get_weight_spec(self.weights_name()).preprocess

    def weights_sha256(self) -> str:
        c = self.config
        return weights_identity(self.weights_name(), c.weights_path, c.random_init, c.seed)


class RequestExtractor(Extractor):
    """An extractor that only declares its frames (`media_request`) and embeds one batch of them (`embed_batch`).

    The shared decode pass feeds it batches through `embed_batch` and collects the rows with `track_from_rows`;
    `extract(media)` is the same pipeline pulling from one `MediaSource`, so both paths give the same rows.
    """

    @abstractmethod
    def media_request(self, info: VideoInfo) -> MediaRequest:
        """Frames at times or clips on spans, at the size the network needs."""

    @abstractmethod
    def embed_batch(self, batch: FrameBatch | ClipBatch) -> np.ndarray:
        """One batch of the request -> (B, dim) rows."""

    def track_from_rows(self, rows: list[np.ndarray], info: VideoInfo) -> FeatureTrack:
        return FeatureTrack.regular(np.concatenate(rows), hop_s=self.hop_s, name=self.name)

    def extract(self, media: MediaSource) -> FeatureTrack:
        request = self.media_request(media.info)
        if isinstance(request, FrameRequest):
            batches = media.frames(request.times_s, size=request.size, batch_size=request.batch_size)
        else:
            batches = media.clips(request.start_s, request.end_s, request.n_frames, size=request.size,
                                  batch_size=request.batch_size)
        rows = []
        for batch in batches:
            rows.append(self.embed_batch(batch))
            report_media_progress(media, batch_done_s(batch, self.hop_s, media.info.duration_s))
        return self.track_from_rows(rows, media.info)


def batch_done_s(batch: FrameBatch | ClipBatch, hop_s: float, duration_s: float) -> float:
    """Seconds of video covered once `batch` is embedded: the end of its last span, or for frames half a step
    past its last time (the frames sit at the middle of their steps)."""
    if isinstance(batch, ClipBatch):
        return float(batch.end_s[-1])
    return min(float(batch.times_s[-1]) + hop_s / 2, duration_s)


def report_media_progress(media: MediaSource, done_s: float) -> None:
    """Tell whoever wrapped `media` that the extractor has processed its first `done_s` seconds of video.

    Extractors call this from their batch loops. A plain `MediaSource` has no `report_progress` and the call
    does nothing; `pipeline.extract` wraps the media to turn these calls into per-extractor progress.
    """
    report = getattr(media, "report_progress", None)
    if callable(report):
        report(float(done_s))


def default_device() -> torch.device:
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def create_extractor(name: str, overrides: Mapping[str, Any] | None = None,
                     device: str | torch.device | None = None) -> Extractor:
    """Build a registered extractor from its defaults plus `overrides`."""
    cls = EXTRACTORS.get(name)
    return cls(build_config(cls.Config, overrides), device=device)


def autocast_context(device: torch.device, enabled: bool = True):
    """bf16 autocast on CUDA (fp32 and deterministic on CPU)."""
    import torch

    if device.type == "cuda" and enabled:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)
