"""`panns_cnn14_2s`: the PANNs Cnn14 (32 kHz, `Cnn14_mAP=0.431.pth`) 2048-d embedding per non-overlapping 2-s window,
the raw-video bridge to the UMT release's `umt_panns_cnn14`.

Recipe. [K] known from UMT issues #17, #22, #40, #48: panns_inference's defaults (Cnn14_mAP=0.431, 32 kHz mono, window
1024, hop 320, 64 mels, 50-14000 Hz), the `embedding` output, the waveform cut into consecutive windows of
`feature_time` = 2 s (64000 samples) for TVSum; the UMT TVSum files have floor(duration / 2 s) rows.
[A] assumed: the resampler (panns_inference loads with librosa; ours decodes with ffmpeg to 32 kHz mono).
Deviation: a final partial window of at least 0.5 s gets a zero-padded row (the project's grid rule); UMT drops it.
"""

from __future__ import annotations

from dataclasses import dataclass

from avhighlights.extractors.base import EXTRACTORS
from avhighlights.extractors.panns import PannsCnn14Extractor, PannsConfig


@dataclass(frozen=True)
class Panns2sConfig(PannsConfig):
    """Cnn14_mAP=0.431 at 32 kHz on 2-s windows."""

    chunk_s: float = 2.0


@EXTRACTORS.register("panns_cnn14_2s")
class PannsCnn14TwoSecondExtractor(PannsCnn14Extractor):
    version = "1"
    Config = Panns2sConfig
    reproduces = ("umt_panns_cnn14",)
