"""Shared pieces of the visual extractors: sampling times on the analysis grid, bounded-memory frame and clip
batches, normalisation, aspect-preserving resize + centre crop, a sha256-prefix check for weights whose
publishers only give a hash prefix (torchvision), and the lazily built network / per-frame loop they share."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from avhighlights.core.errors import WeightsHashError
from avhighlights.core.frame_requests import ClipRequest, FrameRequest
from avhighlights.core.timebase import second_grid
from avhighlights.core.types import ClipBatch, FrameBatch, VideoInfo
from avhighlights.extractors.base import NetworkExtractor, RequestExtractor
from avhighlights.extractors.weights import Preprocess, WeightSpec, cached_sha256, register_weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)



def grid_times(duration_s: float, hop_s: float, position: float = 0.5) -> np.ndarray:
    """One sampling time per step of the `hop_s` grid: start + position * step length, so step i is
    sampled inside [i * hop_s, (i + 1) * hop_s) (the last, partial step inside the video)."""
    grid = second_grid(duration_s, hop_s)
    return grid.start_s + position * (grid.end_s - grid.start_s)  # (T,)


def grid_spans(duration_s: float, hop_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(start_s, end_s) of every grid step, each (T,)."""
    grid = second_grid(duration_s, hop_s)
    return grid.start_s, grid.end_s


def to_tensor(frames: np.ndarray, mean: Sequence[float], std: Sequence[float],
              device: torch.device) -> torch.Tensor:
    """(..., H, W, 3) uint8 -> (..., 3, H, W) float32 scaled to [0, 1] then normalised per channel."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device).float().div_(255.0)  # (..., H, W, 3)
    x = (x - torch.tensor(mean, device=device)) / torch.tensor(std, device=device)
    x = x.movedim(-1, -3)  # (..., 3, H, W)
    if device.type == "cuda" and x.dim() == 4:  # NHWC storage: the fast layout for 2-D convs under autocast
        return x.contiguous(memory_format=torch.channels_last)
    return x.contiguous()


def cover_size(info: VideoInfo, short_side: int) -> tuple[int, int]:
    """(height, width) that scales the displayed frame so its shorter side is `short_side`."""
    scale = short_side / min(info.width, info.height)
    return max(short_side, round(info.height * scale)), max(short_side, round(info.width * scale))


def center_crop(frames: np.ndarray, size: int) -> np.ndarray:
    """The central `size` x `size` window of (..., H, W, 3) frames."""
    h, w = frames.shape[-3:-1]
    top, left = (h - size) // 2, (w - size) // 2
    return frames[..., top:top + size, left:left + size, :]


def check_sha256_prefix(path: Path, prefix: str, url: str) -> Path:
    """Raise `WeightsHashError` unless the file's sha256 starts with `prefix` (torchvision's published check)."""
    actual = cached_sha256(path)
    if not actual.startswith(prefix.lower()):
        raise WeightsHashError(
            f"{path}: sha256 {actual} does not start with the published prefix {prefix}; "
            f"delete the file and download it again from {url}"
        )
    return path


def torchvision_weights(name: str, url: str, licence: str, source: str,
                        preprocess: Preprocess | None = None) -> WeightSpec:
    """Register a torchvision weights file. torchvision publishes only the sha256 prefix (the part of the
    file name after '-'); `check_sha256_prefix(path, torchvision_prefix(spec), spec.url)` checks it, and
    the full hash, computed from the file, enters the cache identity."""
    filename = url.rsplit("/", 1)[-1]
    return register_weights(WeightSpec(
        name=name, filename=filename, url=url, sha256=None, licence=licence, source=source,
        notes=f"torchvision publishes only the sha256 prefix {torchvision_prefix_of(filename)} (in the file name)",
        preprocess=preprocess,
    ))


def torchvision_prefix_of(filename: str) -> str:
    """'r3d_18-b3b3357e.pth' -> 'b3b3357e'."""
    return filename.rsplit(".", 1)[0].rsplit("-", 1)[-1]


class VisualExtractor(NetworkExtractor, RequestExtractor):
    """A network extractor (see `NetworkExtractor`) fed frames by the decoder: it declares them
    (`media_request`) and embeds one batch at a time (`embed_batch`)."""

    modality = "visual"

    def to_input(self, frames: np.ndarray) -> torch.Tensor:
        """(..., H, W, 3) uint8 -> (..., 3, H, W) float32 normalised as the weights expect."""
        return to_tensor(frames, self.preprocess.mean, self.preprocess.std, self.device)


class FrameExtractor(VisualExtractor):
    """One row per frame on the `1 / config.fps` grid, from the frame on screen at the middle of each step."""

    @property
    def hop_s(self) -> float:
        return 1.0 / self.config.fps

    @abstractmethod
    def frame_size(self, info: VideoInfo) -> tuple[int, int]:
        """(height, width) the decoder resizes frames to."""

    @abstractmethod
    def embed_frames(self, frames: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) uint8 frames -> (B, dim) rows."""

    def media_request(self, info: VideoInfo) -> FrameRequest:
        return FrameRequest(grid_times(info.duration_s, self.hop_s), self.frame_size(info), self.config.batch_size)

    def embed_batch(self, batch: FrameBatch) -> np.ndarray:
        return self.embed_frames(batch.frames)


class ClipExtractor(VisualExtractor):
    """One row per `config.chunk_s` step from its first `config.clip_frames` frames (a 3-D CNN's clip)."""

    @property
    def hop_s(self) -> float:
        return self.config.chunk_s

    @abstractmethod
    def clip_size(self) -> tuple[int, int]:
        """(height, width) the decoder resizes frames to."""

    @abstractmethod
    def embed_clips(self, clips: np.ndarray) -> np.ndarray:
        """(B, T, H, W, 3) uint8 clips -> (B, dim) rows."""

    def media_request(self, info: VideoInfo) -> ClipRequest:
        c = self.config
        starts, ends = grid_spans(info.duration_s, c.chunk_s)
        return ClipRequest(starts, ends, c.clip_frames, self.clip_size(), c.batch_size)

    def embed_batch(self, batch: ClipBatch) -> np.ndarray:
        return self.embed_clips(batch.frames)
