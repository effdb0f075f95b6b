"""`inception_v3_pca_yt8m`: `inception_v3_pca` with the YouTube-8M PCA and the 8-bit round-trip, the raw-video bridge
to Mr.HiSum's `yt8m_rgb_dequantised` (the `features` of `mr_hisum.h5`: YouTube-8M frame features at 1 fps,
dequantised).

Recipe (spec §7, youtube-8m `feature_extractor.py`): Inception-v3 pool 2048-d per frame at 1 fps, PCA with the
published YouTube-8M mean / eigenvectors / eigenvalues to 1024-d, whitening with sqrt(eigenvalue + 1e-4), quantised to
uint8 on [-2, 2] and dequantised as the YouTube-8M readers do (`pca.py`). The PCA artefact is registered as weights
`yt8m_pca` (the converted .npz of http://data.yt8m.org/yt8m_pca.tgz), so a missing file fails like missing weights
(exit 4, naming the file, URL and folders); `pca_path` still takes any other PCA file.
[A] The network is torchvision's Inception-v3, not the 2015 TF graph YouTube-8M used (see inception_pca.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from avhighlights.extractors.base import EXTRACTORS
from avhighlights.extractors.inception_pca import InceptionPcaConfig, InceptionPcaExtractor
from avhighlights.extractors.weights import PublishedArtefact, WeightSpec, register_weights, resolve_weights

YT8M_PCA = register_weights(WeightSpec(
    name="yt8m_pca",
    filename="yt8m_pca_1024.npz",
    url="",  # nobody publishes the converted file: see converted_from
    sha256=None,
    licence="CC BY 4.0 (YouTube-8M dataset and starter code artefacts, Google)",
    source="Abu-El-Haija et al., YouTube-8M: A Large-Scale Video Classification Benchmark, 2016; "
           "github.com/google/youtube-8m feature_extractor",
    notes="the 2048 -> 1024 PCA (mean, eigenvectors, eigenvalues) of the YouTube-8M frame features, as the .npz "
          "artefact of extractors/pca.py; sha256 not published: unverified",
    converted_from=PublishedArtefact(
        url="http://data.yt8m.org/yt8m_pca.tgz",
        sha256=None,
        convert="tar xzf yt8m_pca.tgz (mean.npy, eigenvals.npy, pca_matrix.npy), then `avhighlights pca import-yt8m "
                "--dir yt8m_pca --out yt8m_pca_1024.npz` and `avhighlights weights import yt8m_pca_1024.npz`",
    ),
))


@dataclass(frozen=True)
class InceptionYt8mConfig(InceptionPcaConfig):
    """`pca_path` None: the registered `yt8m_pca` file (search folders, then the weights cache)."""

    quantize: bool = True


@EXTRACTORS.register("inception_v3_pca_yt8m")
class InceptionYt8mExtractor(InceptionPcaExtractor):
    """1024-d YouTube-8M-style (PCA, whitened, 8-bit round-trip) Inception-v3 features at 1 fps."""

    version = "1"
    Config = InceptionYt8mConfig
    reproduces = ("yt8m_rgb_dequantised",)

    @property
    def dim(self) -> int:
        return 1024 if self._pca is None and self.config.pca_path is None else super().dim

    @property
    def pca_path(self) -> Path:
        if self.config.pca_path is not None:
            return super().pca_path
        return resolve_weights(YT8M_PCA.name)

    def weight_names(self) -> tuple[str, ...]:
        return (*super().weight_names(), YT8M_PCA.name)
