"""One time base for every stream: feature tracks with explicit spans, the 1-s grid, and `align`.

Grid rule: a video of duration d seconds gets floor(d) full one-second steps, plus one final
partial step [floor(d), d) when that tail is at least `MIN_TAIL_S` long. Step i covers
[i, min(i + 1, d)). A video shorter than `MIN_TAIL_S` still gets one step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

MIN_TAIL_S = 0.25


@dataclass(frozen=True)
class Spans:
    """Half-open time intervals [start_s[i], end_s[i]) in seconds, sorted by start."""

    start_s: np.ndarray  # (T,)
    end_s: np.ndarray  # (T,)

    def __post_init__(self) -> None:
        if self.start_s.shape != self.end_s.shape or self.start_s.ndim != 1:
            raise ValueError("start_s and end_s must be 1-D arrays of equal length")
        if np.any(self.end_s < self.start_s):
            raise ValueError("every span needs end_s >= start_s")

    def __len__(self) -> int:
        return int(self.start_s.shape[0])

    @classmethod
    def regular(cls, n: int, hop_s: float, start_s: float = 0.0, window_s: float | None = None) -> Spans:
        """n spans starting every `hop_s`, each `window_s` long (default: `hop_s`)."""
        starts = start_s + hop_s * np.arange(n, dtype=np.float64)
        return cls(starts, starts + (hop_s if window_s is None else window_s))

    def clipped(self, duration_s: float) -> Spans:
        return Spans(np.minimum(self.start_s, duration_s), np.minimum(self.end_s, duration_s))

    @property
    def mid_s(self) -> np.ndarray:
        return 0.5 * (self.start_s + self.end_s)


def grid_steps(duration_s: float, step_s: float = 1.0) -> int:
    """Number of grid steps for a video of `duration_s` (see the module docstring)."""
    if duration_s <= 0:
        raise ValueError(f"duration must be positive, got {duration_s}")
    full = math.floor(duration_s / step_s + 1e-9)
    tail_s = duration_s - full * step_s
    return max(1, full + (1 if tail_s >= MIN_TAIL_S * step_s else 0))


def second_grid(duration_s: float, step_s: float = 1.0) -> Spans:
    """The analysis grid: `grid_steps` spans of `step_s`, the last one clipped to the duration."""
    n = grid_steps(duration_s, step_s)
    spans = Spans.regular(n, step_s)
    end = np.minimum(spans.end_s, max(duration_s, spans.start_s[-1] + 1e-6))
    return Spans(spans.start_s, end)


@dataclass(frozen=True)
class FeatureTrack:
    """Features of one stream: row i describes the time span `spans[i]`."""

    values: np.ndarray  # (T, D) float32
    spans: Spans
    name: str = ""
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.values.ndim != 2:
            raise ValueError(f"feature track {self.name!r} must be 2-D (T, D), got {self.values.shape}")
        if self.values.shape[0] != len(self.spans):
            raise ValueError(
                f"feature track {self.name!r}: {self.values.shape[0]} rows but {len(self.spans)} spans"
            )

    @classmethod
    def regular(cls, values: np.ndarray, hop_s: float, start_s: float = 0.0,
                window_s: float | None = None, name: str = "") -> FeatureTrack:
        return cls(np.asarray(values, dtype=np.float32), Spans.regular(len(values), hop_s, start_s, window_s), name)

    @property
    def dim(self) -> int:
        return int(self.values.shape[1])

    def __len__(self) -> int:
        return int(self.values.shape[0])


def overlap_weights(src: Spans, dst: Spans) -> list[tuple[np.ndarray, np.ndarray]]:
    """For every dst span, the indices of overlapping src spans and their overlap lengths (s)."""
    order = np.argsort(src.start_s, kind="stable")
    starts, ends = src.start_s[order], src.end_s[order]
    max_len = float(np.max(ends - starts)) if len(src) else 0.0
    result = []
    for a, b in zip(dst.start_s, dst.end_s, strict=True):
        lo = int(np.searchsorted(starts, a - max_len, side="left"))
        hi = int(np.searchsorted(starts, b, side="left"))
        idx = np.arange(lo, hi)
        overlap = np.minimum(ends[idx], b) - np.maximum(starts[idx], a)
        keep = overlap > 0
        result.append((order[idx[keep]], overlap[keep]))
    return result


def align(values: np.ndarray, src: Spans, dst: Spans) -> np.ndarray:
    """Resample rows living on `src` spans onto `dst` spans.

    Each dst row is the overlap-length weighted mean of the src rows it overlaps. A dst span that
    overlaps nothing (beyond the ends of the source, or a zero-length span) takes the src row whose
    midpoint is nearest. Works in both directions: 0.2-s tracks onto 1-s grids (means), 2-s clips
    onto 1-s grids (repeats), 1-s scores onto dataset clips (means over overlapping seconds).
    """
    values = np.asarray(values)
    squeeze = values.ndim == 1
    rows = values[:, None] if squeeze else values  # (T_src, D)
    if len(src) == 0:
        raise ValueError("cannot align an empty track")
    out = np.empty((len(dst), rows.shape[1]), dtype=np.float64)
    src_mid = src.mid_s
    for i, (idx, w) in enumerate(overlap_weights(src, dst)):
        if len(idx):
            out[i] = (w[:, None] * rows[idx]).sum(axis=0) / w.sum()
        else:
            out[i] = rows[int(np.argmin(np.abs(src_mid - dst.mid_s[i])))]
    out = out.astype(rows.dtype if np.issubdtype(rows.dtype, np.floating) else np.float32)
    return out[:, 0] if squeeze else out


def align_track(track: FeatureTrack, dst: Spans) -> FeatureTrack:
    """`align` for a FeatureTrack; the result lives on `dst`."""
    return FeatureTrack(align(track.values, track.spans, dst).astype(np.float32), dst, track.name, track.meta)
