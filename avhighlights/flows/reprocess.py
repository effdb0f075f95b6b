"""The `reprocess-dataset` flow: score every video of a folder or manifest, resumably.

- Inputs: a folder (searched recursively for video files) or a manifest: a `.txt` file with one
  path per line (`#` comments, paths relative to the manifest) or a `.json` list of paths (or
  `{"videos": [...]}`).
- Resumable: features come from the feature store, and a video whose `highlights.json` already
  matches its content hash, method, checkpoint and selection (with its clips on disk) is skipped.
- One bad video never fails the batch: each video is one task; its failure becomes a `failed` row and
  an entry of the summary's `failures` list (file and one-line reason; typed errors at once, transient
  ones after retries with backoff). `batch_exit_code` maps the summary to the CLI's exit code.
- Evaluation: when `<stem>.labels.json`/`.labels.csv` sits next to a video (the folder layout of
  `evaluation/folder_data.py`) the per-video DAViHD metrics are computed from its scores.
- Unsupervised methods without a checkpoint (`recurrence`, `rasl`) are fitted once, before the fan-out, on
  every readable video of the batch plus `library` ($AVH_LIBRARY), through the fit cache of
  `pipeline/fit_cache.py`; every video is then scored with that one fit (named in the summary).
- Task runner: threads by default; `dask_workers=N` starts a local Dask cluster of N processes
  (scheduler, workers and dashboard on 127.0.0.1; `dask_dashboard` moves the dashboard),
  `dask_address=tcp://host:8786` uses an existing one (prefect-dask).
- Output: `<out_dir>/<relative path>/<stem>/` per video, `<out_dir>/reprocess-summary.json` and a
  table artifact (status, seconds, clips, metrics per video).

    avhighlights reprocess DATASET_DIR --out out/ [--dask-workers 2]
"""

from __future__ import annotations

import functools
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from prefect import flow, get_run_logger, task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from avhighlights.core.atomic import write_json
from avhighlights.core.errors import AVHighlightsError, DatasetError, MediaError
from avhighlights.core.errors import batch_exit_code as exit_code_of_batch
from avhighlights.core.files import videos_under
from avhighlights.core.timebase import second_grid
from avhighlights.core.types import VideoInfo
from avhighlights.evaluation.folder_data import FolderDataset, read_labels
from avhighlights.evaluation.metrics import davihd_video_metrics
from avhighlights.flows.artifacts import publish_batch_table
from avhighlights.flows.concurrency import RETRIES, RETRY_DELAYS_S, Timeouts, retry_transient
from avhighlights.flows.extract_and_score import TASK_OPTIONS, fit_on, flow_config
from avhighlights.pipeline.batch import read_manifest
from avhighlights.pipeline.extract import ExtractionStats
from avhighlights.pipeline.featurize import open_store
from avhighlights.pipeline.probe import content_sha256, probe
from avhighlights.pipeline.progress import null_progress
from avhighlights.pipeline.render import REEL_STEM
from avhighlights.pipeline.results import HighlightsDoc, ResultsError, read_results
from avhighlights.pipeline.run import write_outputs
from avhighlights.pipeline.run_config import RunConfig, ScorerSpec
from avhighlights.pipeline.score import score_video
from avhighlights.pipeline.scorer import PreparedScorer, create_scorer, parse_scorer_source, source_extractors
from avhighlights.pipeline.select import select_segments

SUMMARY_NAME = "reprocess-summary.json"


@dataclass(frozen=True)
class BatchConfig:
    """Everything one video's task needs (JSON-able, so it travels to Dask workers)."""

    out_dir: str
    run: dict[str, Any] = field(default_factory=lambda: RunConfig().to_dict())  # RunConfig.to_dict(), store resolved
    evaluate: bool = True
    checkpoint: str | None = None  # what results record as their checkpoint (None: a reference method)

    @property
    def config(self) -> RunConfig:
        return RunConfig.from_dict(self.run)


def list_videos(source: str | Path) -> list[tuple[Path, Path]]:
    """(video, output-relative path) pairs of a folder (recursive) or a manifest, in a stable order."""
    source = Path(source)
    if source.is_dir():
        videos = videos_under(source)
        return [(p, p.relative_to(source)) for p in videos]
    if source.is_file():
        videos = read_manifest(source, DatasetError)
        base = _layout_base([p.resolve() for p in videos], source.parent.resolve())
        return [(p, p.resolve().relative_to(base)) for p in videos]
    raise DatasetError(f"{source}: neither a folder nor a manifest file")


def _layout_base(videos: list[Path], manifest_dir: Path) -> Path:
    """The folder a manifest's output layout is relative to: the manifest's own folder when it holds every
    video, else the videos' common folder, so that a/x.mp4 and b/x.mp4 never share an output folder."""
    if all(v.is_relative_to(manifest_dir) for v in videos):
        return manifest_dir
    return Path(os.path.commonpath([v.parent for v in videos])) if videos else manifest_dir


def video_out_dir(config: BatchConfig, rel: str) -> Path:
    """`<out_dir>/<relative folder>/<stem>/`: the dataset's layout, so equal stems never collide."""
    rel_path = Path(rel)
    return Path(config.out_dir) / rel_path.parent / rel_path.stem


def finished_doc(results_json: Path, sha256: str, batch: BatchConfig) -> HighlightsDoc | None:
    """The existing results when they match this content and configuration and the clips and reel asked for
    are on disk (a run with --no-clips/--no-reel is finished by a later one without them)."""
    try:
        doc = read_results(results_json)
    except ResultsError:
        return None
    run = batch.config
    same_scorer = doc.checkpoint == batch.checkpoint and (batch.checkpoint is not None
                                                           or doc.method == run.scorer.method)
    same = same_scorer and doc.video.sha256 == sha256 and doc.selection == run.selection
    folder = results_json.parent
    clips_there = not run.render.write_clips or all(c.path and (folder / c.path).is_file() for c in doc.clips)
    reel_there = not (run.render.write_reel and doc.clips) or any(folder.glob(f"{REEL_STEM}.*"))
    return doc if same and clips_there and reel_there else None


@functools.lru_cache(maxsize=4)
def _scorer(scorer_json: str) -> PreparedScorer:
    return create_scorer(ScorerSpec.from_dict(json.loads(scorer_json)))


def _batch_scorer(run: RunConfig) -> PreparedScorer:
    return _scorer(json.dumps(run.to_dict()["scorer"], sort_keys=True))


@task(name="fit", **TASK_OPTIONS)
def fit_batch_task(videos: list[str], config: dict[str, Any]) -> dict[str, Any]:
    """One fit of an unsupervised method on every readable video (plus the library), or a cached one;
    unreadable videos are left to fail in their own task."""
    infos = []
    for video in videos:
        try:
            infos.append(probe(video))
        except MediaError as exc:
            get_run_logger().warning("not fitted on %s", exc)
    if not infos:
        raise DatasetError("no readable video to fit the method on")
    return fit_on(infos, RunConfig.from_dict(config))


def _metrics(video: Path, scores: np.ndarray, duration_s: float) -> dict[str, float]:
    label_path = FolderDataset._label_path(video)
    if label_path is None:
        return {}
    labels, _ = read_labels(label_path, second_grid(duration_s))
    return {k: round(float(v), 6) for k, v in davihd_video_metrics(scores, labels).items()}


def _score_and_write(video: Path, target: Path, batch: BatchConfig) -> tuple[HighlightsDoc, list[str]]:
    info: VideoInfo = probe(video)
    run, stats = batch.config, ExtractionStats()
    curve = score_video(_batch_scorer(run), info, open_store(run.store), stats=stats)
    segments = select_segments(curve, info.duration_s, run.selection)
    result = write_outputs(info, curve, segments, run.selection, target, run.render, null_progress)
    return read_results(result.results_json), stats.misses


@task(name="process-video", task_run_name="process-{rel}", retries=RETRIES, retry_delay_seconds=RETRY_DELAYS_S,
      retry_condition_fn=retry_transient, cache_policy=NO_CACHE)
def process_video(video: str, rel: str, config: BatchConfig) -> dict[str, Any]:
    """One video: skipped when its results are current, otherwise scored and written."""
    t0, path, target = time.monotonic(), Path(video), video_out_dir(config, rel)
    doc = finished_doc(target / "highlights.json", content_sha256(path), config)
    status, misses = "skipped", []
    if doc is None:
        doc, misses = _score_and_write(path, target, config)
        status = "done"
    row = {"video": rel, "status": status, "seconds": round(time.monotonic() - t0, 3), "n_clips": len(doc.clips),
           "computed_features": ",".join(misses), "worker": f"{socket.gethostname()}:{os.getpid()}",
           "results_json": str(target / "highlights.json")}
    if config.evaluate:
        row.update(_metrics(path, doc.curve.scores, doc.video.duration_s))
    get_run_logger().info("%s: %s in %.2f s", rel, status, row["seconds"])
    return row


def _failed_row(video: str, rel: str, state) -> dict[str, Any]:
    """The row of a video whose task failed: its file, a one-line reason and the exit code of that error."""
    try:
        state.result()
        message, error_type, exit_code = state.message or state.name, "Failed", 1
    except BaseException as exc:  # noqa: BLE001 - the failure of one video is reported, not raised
        typed = isinstance(exc, AVHighlightsError)
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        message = text if typed and text else f"{type(exc).__name__}: {text}".rstrip(": ")
        error_type, exit_code = type(exc).__name__, exc.exit_code if typed else 1
    return {"video": rel, "status": "failed", "file": video, "error": message, "error_type": error_type,
            "exit_code": exit_code}


VideoDone = Callable[[dict[str, Any], int, int], None]  # (row, videos finished, videos in the batch)


@flow(name="reprocess-batch")
def reprocess_batch(videos: list[tuple[str, str]], config: BatchConfig,
                    on_video: VideoDone | None = None) -> list[dict[str, Any]]:
    """Fan out one task per video on this flow's task runner; failures become rows. `on_video` is called in
    the flow's process with each row, in submission order (a progress bar; it is not sent to the server)."""
    timeout_s = Timeouts.from_env().extract
    futures = process_video.with_options(timeout_seconds=timeout_s).map(
        [v for v, _ in videos], [r for _, r in videos], config=unmapped(config))
    rows = []
    for (video, rel), future in zip(videos, futures, strict=True):
        future.wait()
        state = future.state
        rows.append(future.result() if state.is_completed() else _failed_row(video, rel, state))
        if on_video is not None:
            on_video(rows[-1], len(rows), len(videos))
    return rows


LOOPBACK = "127.0.0.1"


def local_cluster_kwargs(n_workers: int, dashboard: str | None = None) -> dict[str, Any]:
    """LocalCluster arguments: scheduler, nannies and workers listen on loopback only, and so does the
    scheduler's HTTP server (dashboard, health, metrics), on a free port unless `dashboard` names an address
    such as "127.0.0.1:8787". (Dask's default ":8787" listens on every interface, and there is no switch to
    turn that HTTP server off.) Workers serve no dashboard."""
    return {"n_workers": n_workers, "threads_per_worker": 1, "processes": True, "host": LOOPBACK,
            "dashboard_address": dashboard or f"{LOOPBACK}:0", "worker_dashboard_address": None}


def make_task_runner(dask_address: str | None = None, dask_workers: int = 0, max_workers: int | None = None,
                     dask_dashboard: str | None = None):
    """ThreadPool by default; a Dask cluster (existing at `dask_address`, or local with N processes)."""
    if dask_address or dask_workers:
        from prefect_dask import DaskTaskRunner

        if dask_address:
            return DaskTaskRunner(address=dask_address)
        return DaskTaskRunner(cluster_kwargs=local_cluster_kwargs(dask_workers, dask_dashboard))
    return ThreadPoolTaskRunner(max_workers=max_workers)


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "skipped", "failed")}
    metric_names = sorted({k for r in rows for k in r} & {"f1_top50", "map50", "map15", "rho", "tau"})
    means = {m: float(np.nanmean([r.get(m, np.nan) for r in rows])) for m in metric_names
             if any(np.isfinite(r.get(m, np.nan)) for r in rows)}
    failures = [{"video": r["video"], "file": r["file"], "error": r["error"], "exit_code": r["exit_code"]}
                for r in rows if r["status"] == "failed"]
    return {"n_videos": len(rows), **counts, "mean_metrics": means, "failures": failures, "videos": rows}


def batch_exit_code(summary: dict[str, Any]) -> int:
    """`errors.batch_exit_code` over a reprocess summary (0, 9 = some failed, or the code all failures share)."""
    return exit_code_of_batch(summary["n_videos"], [f["exit_code"] for f in summary["failures"]])


@flow(name="reprocess-dataset", log_prints=True)
def reprocess_dataset(source: str, out_dir: str = "reprocess_out", config: dict[str, Any] | None = None,
                      evaluate: bool = True, dask_address: str | None = None, dask_workers: int = 0,
                      max_workers: int | None = None, dask_dashboard: str | None = None,
                      on_video: VideoDone | None = None) -> dict[str, Any]:
    """Score every video of `source` (folder or manifest); returns the summary also written to
    `<out_dir>/reprocess-summary.json`. `config` is a RunConfig as a dict, as for `extract-and-score`
    (scorer, selection, render options, store)."""
    run = flow_config(config)
    source_kind = parse_scorer_source(run.scorer)
    source_extractors(source_kind, run.scorer)  # a bad method, binding or checkpoint fails before any video
    videos = [(str(v), str(rel)) for v, rel in list_videos(source)]
    fit = None
    if source_kind.kind == "fit":
        fit_once = fit_batch_task.with_options(timeout_seconds=Timeouts.from_env().fit)
        fit = fit_once([v for v, _ in videos], run.to_dict())
        run = replace(run, scorer=replace(run.scorer, checkpoint=fit["checkpoint"]))
    batch = BatchConfig(out_dir, run.to_dict(), evaluate, fit["checkpoint"] if fit else source_kind.label)
    runner = make_task_runner(dask_address, dask_workers, max_workers, dask_dashboard)
    rows = reprocess_batch.with_options(task_runner=runner)(videos, batch, on_video)
    summary = {"source": str(source), "method": run.scorer.method, "checkpoint": batch.checkpoint,
               "fit": fit and fit["fit"], **summarize(rows)}
    write_json(Path(out_dir) / SUMMARY_NAME, summary)
    publish_batch_table([{k: r.get(k, "") for k in _columns(rows)} for r in rows], Path(source).name)
    return summary


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for row in rows:
        names += [k for k in row if k not in names and k != "results_json"]
    return names
