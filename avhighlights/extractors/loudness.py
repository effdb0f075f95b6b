"""`loudness`: weight-free per-second audio energy features for the `loudness` reference method.

Row i covers [i, i+1) s of 16-kHz mono audio: [rms_dbfs, peak_dbfs, spectral_flux]. Silence is
floored at -100 dBFS. Spectral flux is the mean positive change of the 512-point magnitude spectrum
between consecutive 32-ms frames inside the second (0 for silence).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avhighlights.core.timebase import FeatureTrack, grid_steps
from avhighlights.core.types import MediaSource
from avhighlights.extractors.base import EXTRACTORS, Extractor, report_media_progress

FLOOR_DB = -100.0


@dataclass(frozen=True)
class LoudnessConfig:
    sample_rate: int = 16000
    frame_len: int = 512  # samples per spectral-flux frame (32 ms at 16 kHz)


def dbfs(values: np.ndarray) -> np.ndarray:
    return np.maximum(20.0 * np.log10(np.maximum(values, 1e-12)), FLOOR_DB)


def second_features(samples: np.ndarray, frame_len: int) -> np.ndarray:
    """[rms_dbfs, peak_dbfs, spectral_flux] of one second of samples."""
    if samples.size == 0:
        return np.array([FLOOR_DB, FLOOR_DB, 0.0], dtype=np.float32)
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    peak = float(np.max(np.abs(samples)))
    n_frames = samples.size // frame_len
    flux = 0.0
    if n_frames >= 2:
        frames = samples[: n_frames * frame_len].reshape(n_frames, frame_len)  # (F, L)
        mags = np.abs(np.fft.rfft(frames * np.hanning(frame_len), axis=1))  # (F, L/2+1)
        flux = float(np.mean(np.maximum(np.diff(mags, axis=0), 0.0).sum(axis=1)))
    return np.array([dbfs(np.array(rms)), dbfs(np.array(peak)), flux], dtype=np.float32)


@EXTRACTORS.register("loudness")
class LoudnessExtractor(Extractor):
    version = "1"
    modality = "audio"
    Config = LoudnessConfig

    @property
    def dim(self) -> int:
        return 3

    @property
    def hop_s(self) -> float:
        return 1.0

    def extract(self, media: MediaSource) -> FeatureTrack:
        sr = self.config.sample_rate
        n_steps = grid_steps(media.info.duration_s)
        rows, pending = [], np.zeros(0, dtype=np.float32)
        for chunk in media.audio_chunks(sr, chunk_s=60.0):
            pending = np.concatenate([pending, chunk.samples])
            while pending.size >= sr and len(rows) < n_steps:
                rows.append(second_features(pending[:sr], self.config.frame_len))
                pending = pending[sr:]
                report_media_progress(media, len(rows))
        while len(rows) < n_steps:  # the final partial second (and any shortfall)
            rows.append(second_features(pending[:sr], self.config.frame_len))
            pending = pending[sr:]
        return FeatureTrack.regular(np.stack(rows), hop_s=1.0, name=self.name)
