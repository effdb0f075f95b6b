"""The whole job for one or more videos: probe -> cached features -> scores -> clips -> outputs.

Each video's outputs go to `out_dir/<video stem>/`. Nothing is written for a video that fails
validation, and a failed render leaves earlier outputs untouched (see `pipeline/render.py`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from avhighlights.core.atomic import write_json
from avhighlights.core.errors import ConfigError
from avhighlights.core.progress import ProgressFn
from avhighlights.core.types import ScoreCurve, Segment, VideoInfo
from avhighlights.pipeline.extract import extract_features
from avhighlights.pipeline.index_html import refresh_index, write_index
from avhighlights.pipeline.output_dir import prepare_output_dir, writing_to
from avhighlights.pipeline.probe import probe_all
from avhighlights.pipeline.progress import for_video, null_progress
from avhighlights.pipeline.render import (
    DEFAULT_FORMATS,
    EXPORTS,
    RenderReport,
    existing_source_sha256,
    render_from_json,
    render_outputs,
)
from avhighlights.pipeline.render_checks import remember_probed
from avhighlights.pipeline.results import make_doc
from avhighlights.pipeline.score import PreparedScorer, ScorerSpec, build_sample, prepare_scorer, score_sample
from avhighlights.pipeline.select import SelectionConfig, select_segments, selection_report

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderOptions:
    """How clips are written: re-encoded (frame accurate) unless `stream_copy`; `formats`: the result files
    (names of `render.EXPORTS`; highlights.json is always written)."""

    stream_copy: bool = False
    write_reel: bool = True
    write_clips: bool = True
    formats: tuple[str, ...] = DEFAULT_FORMATS

    def __post_init__(self) -> None:
        unknown = [name for name in self.formats if name not in EXPORTS]
        if unknown:
            raise ConfigError(f"unknown export formats {unknown}; known: {','.join(EXPORTS)}")


@dataclass
class RunResult:
    video: Path
    out_dir: Path
    results_json: Path
    clip_paths: list[Path]
    reel_path: Path | None
    selected_s: float
    n_clips: int = 0
    timings_s: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # e.g. scores too flat to rank (pipeline/select.py)


def open_store(store: str | None):
    """`None` = no cache; "default" = $AVH_FEATURE_STORE or the user cache; else a folder/fsspec URL."""
    if store is None:
        return None
    from avhighlights.extractors.store import FeatureStore, default_store_root

    return FeatureStore(default_store_root() if store == "default" else store)


def video_out_dir(out_root: Path, info: VideoInfo, taken: set[Path]) -> Path:
    """`out_root/<stem>`, disambiguated with a content-hash prefix when two inputs share a stem, or when
    the folder already holds the results of another video (another sha256; a one-line notice says so)."""
    candidate = out_root / info.path.stem
    other = existing_source_sha256(candidate)
    if candidate in taken or (other is not None and other != info.sha256):
        if candidate not in taken:
            log.warning("%s holds the results of another video named %s; writing %s to %s-%s instead", candidate,
                        info.path.name, info.path, candidate.name, info.sha256[:8])
        candidate = out_root / f"{info.path.stem}-{info.sha256[:8]}"
    taken.add(candidate)
    return candidate


def score_videos(videos: Sequence[str | Path], spec: ScorerSpec, out_dir: str | Path, *,
                 selection: SelectionConfig | None = None, render: RenderOptions | None = None,
                 store: str | None = "default", progress: ProgressFn | None = None) -> list[RunResult]:
    """Score each video and write its clips and results. All inputs are validated first, so a bad
    file fails the run before any output is written."""
    progress = progress or null_progress
    infos = [remember_probed(info) for info in probe_all(videos, progress)]
    scorer = prepare_scorer(spec, infos, store, progress)
    feature_store = open_store(store)
    out_root, taken = prepare_output_dir(out_dir), set()
    results = [
        _score_and_write(info, scorer, feature_store, video_out_dir(out_root, info, taken),
                         selection or SelectionConfig(), render or RenderOptions(), progress)
        for info in infos
    ]
    if scorer.fit is not None:  # which on-the-fly fit scored the videos, and why (pipeline/fit_cache.py)
        for result in results:
            with writing_to(result.out_dir):
                write_json(result.out_dir / "fit.json", scorer.fit.to_json())
    write_index(out_root)  # OUT/index.html over every OUT/*/highlights.json
    return results


def _score_and_write(info: VideoInfo, scorer: PreparedScorer, store, out_dir: Path,
                     selection: SelectionConfig, render: RenderOptions, progress: ProgressFn) -> RunResult:
    with for_video(progress, info.path):  # every progress event and error inside names this video
        return _score_and_write_one(info, scorer, store, out_dir, selection, render, progress)


def _score_and_write_one(info: VideoInfo, scorer: PreparedScorer, store, out_dir: Path,
                         selection: SelectionConfig, render: RenderOptions, progress: ProgressFn) -> RunResult:
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    tracks = extract_features(info, list(scorer.extractors.values()), store=store, progress=progress)
    by_role = {role: tracks[ex.name] for role, ex in scorer.extractors.items()}
    timings["features_s"] = time.monotonic() - t0
    curve = score_sample(scorer, info, build_sample(info, by_role))
    segments = select_segments(curve, info.duration_s, selection)
    timings["score_s"] = time.monotonic() - t0 - timings["features_s"]
    result = write_outputs(info, curve, segments, selection, out_dir, render, progress)
    result.timings_s = {**timings, **result.timings_s}
    return result


def write_outputs(info: VideoInfo, curve: ScoreCurve, segments: list[Segment], selection: SelectionConfig,
                  out_dir: Path, render: RenderOptions, progress: ProgressFn) -> RunResult:
    """Render clips, reel and every result file for one scored video."""
    doc = make_doc(info, curve, segments, selection)
    with writing_to(out_dir):
        return _result(render_outputs(doc, out_dir, stream_copy=render.stream_copy, write_clips=render.write_clips,
                                      write_reel=render.write_reel, formats=render.formats,
                                      progress=progress))


def render_results(results_json: str | Path, out_dir: str | Path | None = None, *,
                   render: RenderOptions | None = None, progress: ProgressFn | None = None) -> RunResult:
    """Re-render from a (possibly hand-edited) highlights.json."""
    render = render or RenderOptions()
    target = Path(results_json).parent if out_dir is None else prepare_output_dir(out_dir)
    with writing_to(target):
        report = render_from_json(results_json, target, stream_copy=render.stream_copy,
                                  write_clips=render.write_clips, write_reel=render.write_reel, formats=render.formats,
                                  progress=progress)
    refresh_index(report.out_dir)
    return _result(report)


def _result(report: RenderReport) -> RunResult:
    selected_s = sum(c.duration_s for c in report.doc.clips)
    return RunResult(report.doc.video.path, report.out_dir, report.results_json, list(report.clip_paths),
                     report.reel_path, selected_s, len(report.doc.clips), {"render_s": report.elapsed_s},
                     selection_report(report.doc.curve, report.doc.video.duration_s, report.doc.selection)[1])
