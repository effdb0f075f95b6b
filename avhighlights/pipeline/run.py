"""The whole job for one or more videos: probe -> cached features -> scores -> clips -> outputs.

Each video's outputs go to `out_dir/<video stem>/`. Nothing is written for a video that fails
validation, and a failed render leaves earlier outputs untouched (see `pipeline/render.py`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from avhighlights.core.atomic import write_json
from avhighlights.core.errors import AVHighlightsError
from avhighlights.core.progress import ProgressFn
from avhighlights.core.types import ScoreCurve, Segment, VideoInfo
from avhighlights.extractors.store import FeatureStore
from avhighlights.pipeline.featurize import StoreRef, featurize, open_store  # noqa: F401  (open_store re-exported)
from avhighlights.pipeline.index_html import refresh_index, write_index
from avhighlights.pipeline.output_dir import prepare_output_dir, writing_to
from avhighlights.pipeline.probe import probe
from avhighlights.pipeline.progress import for_video, null_progress, report_count
from avhighlights.pipeline.render import RenderReport, existing_source_sha256, render_from_json, render_outputs
from avhighlights.pipeline.render_checks import remember_probed
from avhighlights.pipeline.results import make_doc
from avhighlights.pipeline.run_config import RenderOptions, RunConfig, ScorerSpec
from avhighlights.pipeline.score import score_sample
from avhighlights.pipeline.scorer import Notify, PreparedScorer, create_scorer
from avhighlights.pipeline.select import SelectionConfig, select_segments, selection_report

log = logging.getLogger(__name__)


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


@dataclass
class BatchRow:
    """One video of a run: "ok" with its outputs, or "failed" with the reason and the error's exit code."""

    video: str
    status: str
    seconds: float = 0.0
    out_dir: str | None = None
    clips: int = 0
    selected_s: float = 0.0
    error: str | None = None
    exit_code: int = 0
    warnings: list[str] = field(default_factory=list)


RowCallback = Callable[[int, int, BatchRow, "float | None"], None]  # (index from 1, total, row, ETA s or None)


@dataclass
class RunOutcome:
    rows: list[BatchRow]  # one per video, in input order
    results: list[RunResult]  # the videos written
    out_root: Path


def score_videos(videos: Sequence[str | Path], spec: ScorerSpec, out_dir: str | Path, *,
                 selection: SelectionConfig | None = None, render: RenderOptions | None = None,
                 store: str | None = "default", progress: ProgressFn | None = None,
                 notify: Notify | None = None) -> list[RunResult]:
    """Score each video and write its clips and results. All inputs are validated first, so a bad
    file fails the run before any output is written."""
    config = RunConfig(spec, selection or SelectionConfig(), render or RenderOptions(), store)
    return run_videos(videos, config, out_dir, progress=progress, notify=notify).results


def run_videos(videos: Sequence[str | Path], config: RunConfig, out_dir: str | Path, *,
               progress: ProgressFn | None = None, notify: Notify | None = None, keep_going: bool = False,
               on_row: RowCallback | None = None) -> RunOutcome:
    """The one loop of `score` (library and CLI): probe every video, build the scorer once (pipeline/scorer.py),
    open the feature store once, then score and write each video into `out_dir/<stem>/` (plus fit.json when an
    on-the-fly fit scored) and refresh OUT/index.html. Without `keep_going` the first error is raised (a bad
    file before any output is written); with it, a video's failure becomes a `failed` row and the others go on
    (a problem every video shares, such as a bad method or checkpoint, still raises)."""
    progress = progress or null_progress
    infos, rows = _probe_each(videos, progress, keep_going)
    store = StoreRef(config.store)  # opened once: by an on-the-fly fit, else here, before any output
    scorer = create_scorer(config.scorer, list(infos.values()), store, progress, notify) if infos else None
    feature_store, out_root, taken = store(), prepare_output_dir(out_dir), set()
    results: list[RunResult] = []
    t_start, n_scored = time.monotonic(), 0
    for i, video in enumerate(videos):
        if i in infos:
            t0 = time.monotonic()
            try:
                result = _score_and_write(infos[i], scorer, feature_store, video_out_dir(out_root, infos[i], taken),
                                          config, progress)
            except Exception as exc:  # one video's failure, whatever it is, must not stop the batch
                if not keep_going:
                    raise
                rows[i] = failed_row(video, exc, time.monotonic() - t0)
            else:
                results.append(result)
                rows[i] = BatchRow(str(video), "ok", round(time.monotonic() - t0, 3), str(result.out_dir),
                                   result.n_clips, round(result.selected_s, 3), warnings=list(result.warnings))
            n_scored += 1
        if on_row is not None:
            left = sum(1 for j in infos if j > i)  # videos still to score; the mean time so far per video
            eta_s = (time.monotonic() - t_start) / n_scored * left if n_scored else (None if left else 0.0)
            on_row(i + 1, len(videos), rows[i], eta_s)
    write_index(out_root)  # OUT/index.html over every OUT/*/highlights.json
    return RunOutcome([rows[i] for i in range(len(videos))], results, out_root)


def _probe_each(videos: Sequence[str | Path], progress: ProgressFn,
                keep_going: bool) -> tuple[dict[int, VideoInfo], dict[int, BatchRow]]:
    """Probed videos by index ("k/n files" on the `probe` stage); a bad one raises, or with `keep_going`
    becomes a failed row."""
    infos: dict[int, VideoInfo] = {}
    rows: dict[int, BatchRow] = {}
    for i, video in enumerate(videos):
        report_count(progress, "probe", i, len(videos), "files")
        try:
            with for_video(progress, video):
                infos[i] = remember_probed(probe(video))  # render need not hash it again
        except AVHighlightsError as exc:
            if not keep_going:
                raise
            rows[i] = failed_row(video, exc, 0.0)
    report_count(progress, "probe", len(videos), len(videos), "files")
    return infos, rows


def failed_row(video: str | Path, exc: Exception, seconds: float) -> BatchRow:
    reason = getattr(exc, "reason", None) or str(exc)
    if not isinstance(exc, AVHighlightsError):
        reason = f"{type(exc).__name__}: {reason}"
    code = exc.exit_code if isinstance(exc, AVHighlightsError) else 1
    return BatchRow(str(video), "failed", round(seconds, 3), error=reason, exit_code=code)


def _score_and_write(info: VideoInfo, scorer: PreparedScorer, store: FeatureStore | None, out_dir: Path,
                     config: RunConfig, progress: ProgressFn) -> RunResult:
    with for_video(progress, info.path):  # every progress event and error inside names this video
        result = _score_and_write_one(info, scorer, store, out_dir, config, progress)
    if scorer.fit is not None:  # which on-the-fly fit scored the video, and why (pipeline/fit_cache.py)
        with writing_to(result.out_dir):
            write_json(result.out_dir / "fit.json", scorer.fit.to_json())
    return result


def _score_and_write_one(info: VideoInfo, scorer: PreparedScorer, store: FeatureStore | None, out_dir: Path,
                         config: RunConfig, progress: ProgressFn) -> RunResult:
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    sample = featurize(scorer.extractors, info, store, progress=progress)
    timings["features_s"] = time.monotonic() - t0
    curve = score_sample(scorer, info, sample)
    segments = select_segments(curve, info.duration_s, config.selection)
    timings["score_s"] = time.monotonic() - t0 - timings["features_s"]
    result = write_outputs(info, curve, segments, config.selection, out_dir, config.render, progress)
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
