"""The `highlights.json` document: what was selected, from which video, by which method.

Users may edit the file (delete, reorder or adjust clips) and re-render from it, so reading it
validates every field and names the file and the field in a `ResultsError`. Clip and reel paths are
stored relative to the folder of the JSON file.

Schema "avhighlights/highlights/1":
    {"schema", "video": VideoInfo.to_json(), "method", "checkpoint", "selection": SelectionConfig fields,
     "scores": [{"start_s", "end_s", "score"}], "clips": [{"start_s", "end_s", "score", "rank", "path"}],
     "reel", "created_utc", "tool_version", "warnings": [str],
     "extractors": {role: {"name", "version", "kind", "dim"}}}
"selection" also records, beside the settings, the rule used ("mode") and "threshold_score": the given or
quantile threshold, else the lowest score the ranking picked (pipeline/select.py); "warnings" holds one
line per problem with the scores or the selection (flat scores, nothing selected). Both are derived: they
are ignored when read back.
"extractors" (optional; files written before it have none) is the binding the scores were computed with:
role -> the extractor that fed it, as resolved at run time (the checkpoint's, the method's default or
`--bind`); {} for a method that reads no features.
Edited clips may leave out "score" (recomputed from "scores"), "rank" (the smallest unused ranks are
given in list order) and "path" (set by the next render).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from avhighlights import __version__
from avhighlights.core.atomic import write_json
from avhighlights.core.errors import ConfigError
from avhighlights.core.sample import FeatureSource
from avhighlights.core.timebase import Spans, align
from avhighlights.core.types import ScoreCurve, Segment, VideoInfo
from avhighlights.pipeline.select import SelectionConfig, selection_report

SCHEMA = "avhighlights/highlights/1"
END_TOLERANCE_S = 1e-3  # an edited end this close beyond the duration is clamped, not rejected


class ResultsError(ConfigError):
    """A highlights.json document is unreadable or has an invalid field."""

    def __init__(self, path: str | Path | None, field_name: str, problem: str):
        self.path = Path(path) if path is not None else None
        self.field_name = field_name
        self.problem = problem
        super().__init__(f"{self.path or '<document>'}: field {field_name!r}: {problem}")


@dataclass(frozen=True)
class ClipEntry:
    """One clip of the document; `path` is relative to the JSON's folder (None before rendering)."""

    start_s: float
    end_s: float
    score: float
    rank: int
    path: str | None = None

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def to_json(self) -> dict:
        return {"start_s": self.start_s, "end_s": self.end_s, "score": self.score, "rank": self.rank,
                "path": self.path}


@dataclass(frozen=True)
class HighlightsDoc:
    """The parsed, validated content of a highlights.json file."""

    video: VideoInfo
    method: str
    checkpoint: str | None
    selection: SelectionConfig
    curve: ScoreCurve
    clips: tuple[ClipEntry, ...]
    reel: str | None = None
    created_utc: str = ""
    tool_version: str = __version__
    extractors: dict[str, FeatureSource] | None = None  # role -> extractor the scores came from; None: not recorded
    source: Path | None = field(default=None, compare=False)  # the file it was read from

    def segments(self) -> list[Segment]:
        return [Segment(c.start_s, c.end_s, c.score, c.rank) for c in self.clips]

    def clips_in_time_order(self) -> list[ClipEntry]:
        return sorted(self.clips, key=lambda c: (c.start_s, c.end_s, c.rank))

    def to_json(self) -> dict:
        summary, warnings = selection_report(self.curve, self.video.duration_s, self.selection)
        return {
            "schema": SCHEMA, "video": self.video.to_json(), "method": self.method, "checkpoint": self.checkpoint,
            "selection": {**dataclasses.asdict(self.selection), **summary},
            "scores": [{"start_s": float(a), "end_s": float(b), "score": float(s)}
                       for a, b, s in zip(self.curve.start_s, self.curve.end_s, self.curve.scores, strict=True)],
            "clips": [c.to_json() for c in sorted(self.clips, key=lambda c: c.rank)],
            "reel": self.reel, "created_utc": self.created_utc, "tool_version": self.tool_version,
            "warnings": warnings,
            **({} if self.extractors is None else
               {"extractors": {role: src.to_json() for role, src in self.extractors.items()}}),
        }


def make_doc(info: VideoInfo, curve: ScoreCurve, segments: list[Segment],
             selection: SelectionConfig) -> HighlightsDoc:
    """A fresh document for `segments` of `info`, clips best first (no paths yet; the renderer sets them)."""
    clips = tuple(ClipEntry(s.start_s, s.end_s, s.score, s.rank) for s in sorted(segments, key=lambda s: s.rank))
    video = dataclasses.replace(info, path=Path(info.path).resolve())
    extractors = None if curve.extractors is None else dict(curve.extractors)
    return HighlightsDoc(video, curve.method, curve.checkpoint, selection, curve, clips, created_utc=utc_now(),
                         extractors=extractors)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_results(doc: HighlightsDoc, path: str | Path) -> Path:
    """Write `doc` atomically to `path` (normally `<out_dir>/highlights.json`)."""
    return write_json(path, doc.to_json())


def read_results(path: str | Path) -> HighlightsDoc:
    """Read and validate a (possibly hand-edited) highlights.json."""
    path = Path(path)
    if not path.is_file():
        raise ResultsError(path, "<file>", "does not exist or is not a regular file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsError(path, "<file>", f"is not valid JSON ({exc})") from exc
    return doc_from_json(data, path)


def doc_from_json(data: Any, path: Path | None = None) -> HighlightsDoc:
    """Validate a parsed document; `path` is only used in error messages and as `source`."""
    reader = _Reader(path)
    data = reader.mapping(data, "<document>")
    if data.get("schema") != SCHEMA:
        raise ResultsError(path, "schema", f"expected {SCHEMA!r}, got {data.get('schema')!r}")
    video = reader.video(data.get("video"))
    extractors = reader.extractors(data.get("extractors"))
    curve = dataclasses.replace(reader.curve(data.get("scores"), reader.text(data.get("method"), "method"),
                                             data.get("checkpoint")), extractors=extractors)
    clips = reader.clips(data.get("clips"), video.duration_s, curve)
    return HighlightsDoc(
        video, curve.method, curve.checkpoint, reader.selection(data.get("selection", {})), curve, clips,
        reel=reader.optional_text(data.get("reel"), "reel"), created_utc=str(data.get("created_utc", "")),
        tool_version=str(data.get("tool_version", "")), extractors=extractors, source=path,
    )


class _Reader:
    """Field-by-field validation; every failure names the file and the field."""

    def __init__(self, path: Path | None):
        self.path = path

    def fail(self, field_name: str, problem: str) -> ResultsError:
        return ResultsError(self.path, field_name, problem)

    def mapping(self, value: Any, name: str) -> dict:
        if not isinstance(value, dict):
            raise self.fail(name, f"must be an object, got {type(value).__name__}")
        return value

    def number(self, value: Any, name: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(name, f"must be a finite number, got {value!r}")
        return float(value)

    def text(self, value: Any, name: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(name, f"must be a non-empty string, got {value!r}")
        return value

    def optional_text(self, value: Any, name: str) -> str | None:
        return None if value is None else self.text(value, name)

    def video(self, value: Any) -> VideoInfo:
        raw = self.mapping(value, "video")
        try:
            info = VideoInfo.from_json(raw)
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            raise self.fail("video", f"is not a valid video description ({exc})") from exc
        if self.number(info.duration_s, "video.duration_s") <= 0:
            raise self.fail("video.duration_s", f"must be positive, got {info.duration_s}")
        if info.fps <= 0:
            raise self.fail("video.fps", f"must be positive, got {info.fps}")
        return info

    def extractors(self, value: Any) -> dict[str, FeatureSource] | None:
        if value is None:  # written before the binding was recorded
            return None
        binding = {}
        for role, raw in self.mapping(value, "extractors").items():
            name = f"extractors.{role}"
            raw = self.mapping(raw, name)
            dim = raw.get("dim", 0)
            if isinstance(dim, bool) or not isinstance(dim, int) or dim < 0:
                raise self.fail(f"{name}.dim", f"must be a non-negative integer, got {dim!r}")
            binding[role] = FeatureSource(self.text(raw.get("name"), f"{name}.name"),
                                          self.text(raw.get("version"), f"{name}.version"),
                                          self.text(raw.get("kind", "extractor"), f"{name}.kind"), dim)
        return binding

    def selection(self, value: Any) -> SelectionConfig:
        raw = self.mapping(value, "selection")
        try:
            return SelectionConfig.from_json(raw)
        except TypeError as exc:
            raise self.fail("selection", f"has unknown or missing fields ({exc})") from exc
        except ConfigError as exc:
            raise self.fail("selection", str(exc)) from exc

    def curve(self, value: Any, method: str, checkpoint: Any) -> ScoreCurve:
        if not isinstance(value, list):
            raise self.fail("scores", "must be a list of {start_s, end_s, score}")
        rows = [self.score_row(row, f"scores[{i}]") for i, row in enumerate(value)]
        arr = np.array(rows, dtype=np.float64).reshape(-1, 3)  # (T, 3)
        return ScoreCurve(arr[:, 2], arr[:, 0], arr[:, 1], method, self.optional_text(checkpoint, "checkpoint"))

    def score_row(self, row: Any, name: str) -> tuple[float, float, float]:
        row = self.mapping(row, name)
        start_s, end_s = self.number(row.get("start_s"), f"{name}.start_s"), self.number(row.get("end_s"),
                                                                                         f"{name}.end_s")
        if end_s < start_s:
            raise self.fail(f"{name}.end_s", f"{end_s} is before start_s {start_s}")
        return start_s, end_s, self.number(row.get("score"), f"{name}.score")

    def clips(self, value: Any, duration_s: float, curve: ScoreCurve) -> tuple[ClipEntry, ...]:
        if not isinstance(value, list):
            raise self.fail("clips", "must be a list of {start_s, end_s, score, rank, path}")
        raw = [self.mapping(c, f"clips[{i}]") for i, c in enumerate(value)]
        spans = [self.clip_span(c, f"clips[{i}]", duration_s) for i, c in enumerate(raw)]
        ranks = self.clip_ranks(raw)
        return tuple(
            ClipEntry(a, b, self.clip_score(c, f"clips[{i}]", curve, a, b), rank,
                      self.optional_text(c.get("path"), f"clips[{i}].path"))
            for i, (c, (a, b), rank) in enumerate(zip(raw, spans, ranks, strict=True))
        )

    def clip_span(self, clip: dict, name: str, duration_s: float) -> tuple[float, float]:
        start_s = self.number(clip.get("start_s"), f"{name}.start_s")
        end_s = self.number(clip.get("end_s"), f"{name}.end_s")
        if not 0.0 <= start_s < duration_s:
            raise self.fail(f"{name}.start_s", f"{start_s} is outside the video [0, {duration_s})")
        if end_s <= start_s:
            raise self.fail(f"{name}.end_s", f"{end_s} is not after start_s {start_s}")
        if end_s > duration_s + END_TOLERANCE_S:
            raise self.fail(f"{name}.end_s", f"{end_s} is beyond the video's duration {duration_s}")
        return start_s, min(end_s, duration_s)

    def clip_score(self, clip: dict, name: str, curve: ScoreCurve, start_s: float, end_s: float) -> float:
        if clip.get("score") is not None:
            return self.number(clip["score"], f"{name}.score")
        if len(curve.scores) == 0:
            return 0.0
        spans = Spans(np.asarray(curve.start_s), np.asarray(curve.end_s))
        return float(align(np.asarray(curve.scores), spans, Spans(np.array([start_s]), np.array([end_s])))[0])

    def clip_ranks(self, clips: list[dict]) -> list[int]:
        given: dict[int, int] = {}
        for i, clip in enumerate(clips):
            rank = clip.get("rank")
            if rank is None:
                continue
            if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
                raise self.fail(f"clips[{i}].rank", f"must be a positive integer, got {rank!r}")
            if rank in given:
                raise self.fail(f"clips[{i}].rank", f"rank {rank} is also used by clips[{given[rank]}]")
            given[rank] = i
        free = (r for r in range(1, 2 * len(clips) + 2) if r not in given)
        return [clip["rank"] if clip.get("rank") is not None else next(free) for clip in clips]
