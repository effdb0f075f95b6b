"""The YouTube-8M visual PCA recipe (spec §7) and its parameters as a hashed artifact.

Recipe (youtube-8m `feature_extractor.py`): x (2048,) -> (x - mean) @ components (2048, K) / sqrt(eigenvalues +
1e-4). Optional 8-bit round-trip as stored in the YouTube-8M records: clip to [-2, 2], map to uint8 with
round((x + 2) * 255 / 4), dequantise with x * 4/255 - 2 + offset, where the youtube-8m readers add half a bin
(offset 4/512); spec §7 writes the dequantisation without it (offset 0).

Artifact: an .npz with `mean` (D,), `components` (D, K) (column k = k-th eigenvector, eigenvalues descending) and
`eigenvalues` (K,); its sha256 is part of the extractor identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avhighlights.core.atomic import atomic_path
from avhighlights.core.errors import CheckpointError, ConfigError

WHITEN_EPS = 1e-4
QUANT_MIN, QUANT_MAX = -2.0, 2.0
YT8M_DEQUANT_OFFSET = (QUANT_MAX - QUANT_MIN) / 512.0
PCA_KEYS = ("mean", "components", "eigenvalues")


@dataclass(frozen=True)
class PcaParams:
    mean: np.ndarray  # (D,)
    components: np.ndarray  # (D, K)
    eigenvalues: np.ndarray  # (K,)

    def __post_init__(self) -> None:
        d, k = self.components.shape if self.components.ndim == 2 else (-1, -1)
        if self.mean.shape != (d,) or self.eigenvalues.shape != (k,) or k < 1:
            raise CheckpointError(f"inconsistent PCA shapes: mean {self.mean.shape}, components "
                                  f"{self.components.shape}, eigenvalues {self.eigenvalues.shape}")

    @property
    def in_dim(self) -> int:
        return int(self.components.shape[0])

    @property
    def n_components(self) -> int:
        return int(self.components.shape[1])


def fit_pca(features: np.ndarray, n_components: int) -> PcaParams:
    """PCA of (N, D) features: mean, the top `n_components` covariance eigenvectors (sign fixed so each one's
    largest-magnitude entry is positive) and their eigenvalues (unbiased covariance, descending)."""
    x = np.asarray(features, dtype=np.float64)  # (N, D)
    if x.ndim != 2 or not 1 <= n_components <= min(x.shape[1], max(x.shape[0] - 1, 1)):
        raise ConfigError(f"cannot fit {n_components} components to features of shape {x.shape} "
                          "(need 1 <= n_components <= min(dim, n_rows - 1))")
    mean = x.mean(axis=0)  # (D,)
    _, singular, vt = np.linalg.svd(x - mean, full_matrices=False)  # vt (min(N, D), D)
    components = vt[:n_components].T  # (D, K)
    flip = np.sign(components[np.abs(components).argmax(axis=0), np.arange(n_components)])  # (K,)
    eigenvalues = singular[:n_components] ** 2 / max(x.shape[0] - 1, 1)  # (K,)
    return PcaParams(mean.astype(np.float32), (components * flip).astype(np.float32), eigenvalues.astype(np.float32))


def apply_pca(features: np.ndarray, params: PcaParams, eps: float = WHITEN_EPS) -> np.ndarray:
    """(N, D) -> (N, K) projected and whitened features."""
    if features.shape[-1] != params.in_dim:
        raise ConfigError(f"PCA expects {params.in_dim}-d features, got {features.shape[-1]}")
    projected = (np.asarray(features, np.float64) - params.mean) @ params.components  # (N, K)
    return (projected / np.sqrt(params.eigenvalues.astype(np.float64) + eps)).astype(np.float32)


def quantize(features: np.ndarray) -> np.ndarray:
    """float -> uint8 as the YouTube-8M records store it (clip to [-2, 2], 255 levels, round half to even)."""
    scaled = (np.clip(features, QUANT_MIN, QUANT_MAX) - QUANT_MIN) * (255.0 / (QUANT_MAX - QUANT_MIN))
    return np.round(scaled).astype(np.uint8)


def dequantize(codes: np.ndarray, offset: float = YT8M_DEQUANT_OFFSET) -> np.ndarray:
    """uint8 -> float: codes * 4/255 - 2 + offset."""
    return (codes.astype(np.float32) * ((QUANT_MAX - QUANT_MIN) / 255.0) + QUANT_MIN + offset).astype(np.float32)


def save_pca(params: PcaParams, path: str | Path) -> Path:
    """Write the artifact atomically (uncompressed .npz)."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, mean=params.mean, components=params.components, eigenvalues=params.eigenvalues)
    return path


def load_pca(path: str | Path) -> PcaParams:
    """Read and validate an artifact written by `save_pca` (or by hand with the same keys)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: np.asarray(data[key], dtype=np.float32) for key in PCA_KEYS}
    except (OSError, KeyError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a PCA artifact with {', '.join(PCA_KEYS)} ({exc})") from exc
    return PcaParams(**arrays)


def from_youtube8m(folder: str | Path, n_components: int = 1024) -> PcaParams:
    """The official YouTube-8M files (yt8m_pca.tgz: mean.npy (2048, 1), eigenvals.npy (2048, 1),
    pca_matrix.npy (2048, 2048) with eigenvectors as rows) in artifact form, as feature_extractor.py uses them."""
    folder = Path(folder)
    try:
        mean = np.load(folder / "mean.npy")[:, 0]
        eigenvalues = np.load(folder / "eigenvals.npy")[:n_components, 0]
        components = np.load(folder / "pca_matrix.npy").T[:, :n_components]
    except (OSError, IndexError, ValueError) as exc:
        raise CheckpointError(f"{folder}: cannot read the YouTube-8M PCA files ({exc})") from exc
    return PcaParams(mean.astype(np.float32), components.astype(np.float32), eigenvalues.astype(np.float32))
