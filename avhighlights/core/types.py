"""Typed values that flow forward through the pipeline.

video info -> decoded frames/audio -> features per extractor -> aligned features
-> scores per second -> segments -> clips. Times are seconds; frame indices stay inside modules.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Mapping

    from avhighlights.core.sample import FeatureSource


@dataclass(frozen=True)
class VideoInfo:
    """What ffprobe says about a validated input file, plus its content hash."""

    path: Path
    sha256: str
    duration_s: float
    fps: Fraction
    variable_frame_rate: bool
    width: int  # displayed width, after rotation
    height: int  # displayed height, after rotation
    rotation_deg: int
    video_codec: str
    has_audio: bool
    audio_codec: str | None = None
    audio_sample_rate: int | None = None
    audio_channels: int | None = None
    container: str = ""
    size_bytes: int = 0
    start_timecode: str | None = None  # the source's timecode tag ("01:00:00:00", ";" = drop-frame), if any

    def to_json(self) -> dict:
        return {
            "path": str(self.path), "sha256": self.sha256, "duration_s": self.duration_s,
            "fps": f"{self.fps.numerator}/{self.fps.denominator}", "fps_float": float(self.fps),
            "variable_frame_rate": self.variable_frame_rate, "width": self.width, "height": self.height,
            "rotation_deg": self.rotation_deg, "video_codec": self.video_codec, "has_audio": self.has_audio,
            "audio_codec": self.audio_codec, "audio_sample_rate": self.audio_sample_rate,
            "audio_channels": self.audio_channels, "container": self.container, "size_bytes": self.size_bytes,
            "start_timecode": self.start_timecode,
        }

    @classmethod
    def from_json(cls, data: dict) -> VideoInfo:
        fields = dict(data)
        fields.pop("fps_float", None)
        fields["path"] = Path(fields["path"])
        fields["fps"] = Fraction(fields["fps"])
        return cls(**fields)


@dataclass(frozen=True)
class AudioChunk:
    """Mono float32 samples in [-1, 1] starting at `start_s`."""

    start_s: float
    sample_rate: int
    samples: np.ndarray  # (n,) float32
    silent_substitute: bool = False  # True when the video has no audio track


@dataclass(frozen=True)
class FrameBatch:
    """Single frames sampled at the given times (RGB uint8, already rotated upright)."""

    times_s: np.ndarray  # (B,)
    frames: np.ndarray  # (B, H, W, 3) uint8


@dataclass(frozen=True)
class ClipBatch:
    """Dense short clips, one per span: frames (B, n_frames, H, W, 3) uint8, upright."""

    start_s: np.ndarray  # (B,)
    end_s: np.ndarray  # (B,)
    frames: np.ndarray  # (B, n_frames, H, W, 3) uint8


class MediaSource(Protocol):
    """Decoded access to one validated video; every method streams in bounded batches."""

    info: VideoInfo

    def audio_chunks(self, sample_rate: int, chunk_s: float = 60.0) -> Iterator[AudioChunk]:
        """Consecutive mono chunks covering [0, duration); silence (flagged) when there is no audio."""
        ...

    def frames(self, times_s: np.ndarray, size: tuple[int, int] | None = None,
               batch_size: int = 32) -> Iterator[FrameBatch]:
        """Frames nearest to each requested time; `size` = (height, width) resize, None = native."""
        ...

    def clips(self, spans_start_s: np.ndarray, spans_end_s: np.ndarray, n_frames: int,
              size: tuple[int, int] | None = None, batch_size: int = 8) -> Iterator[ClipBatch]:
        """For each span, `n_frames` consecutive native frames from its start (last frame repeated
        when the span has fewer)."""
        ...


@dataclass(frozen=True)
class ScoreCurve:
    """Highlight scores on spans (normally the 1-s grid); higher is more highlight-worthy."""

    scores: np.ndarray  # (T,) float
    start_s: np.ndarray  # (T,)
    end_s: np.ndarray  # (T,)
    method: str
    checkpoint: str | None = None
    meta: dict = field(default_factory=dict)
    extractors: Mapping[str, FeatureSource] | None = None  # role -> the extractor that fed it; None: not known


@dataclass(frozen=True)
class Segment:
    """A selected highlight span."""

    start_s: float
    end_s: float
    score: float
    rank: int

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s
