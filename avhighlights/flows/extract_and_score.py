"""The `extract-and-score` flow: probe -> plan -> one task per extractor (through the feature store) ->
[fit, for an unsupervised method without a checkpoint] -> score -> select -> write clips and results,
with a markdown report and a progress artifact.

Tasks exchange paths, store keys and small JSON documents (the per-second score curve and the
segments), never feature arrays: the feature store is the cache shared by every worker, so an
extractor task is a cheap lookup when the same content was already processed with the same
extractor (whatever the method). Run it locally with `python -m avhighlights.flows.extract_and_score
VIDEO`, serve it with `python -m avhighlights.flows.serve`, then `prefect deployment run
'extract-and-score/extract-and-score' --param video=...`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from avhighlights.core.atomic import write_json
from avhighlights.core.sample import FeatureSource
from avhighlights.core.types import ScoreCurve, Segment, VideoInfo
from avhighlights.extractors import create_extractor
from avhighlights.extractors.store import default_store_root
from avhighlights.flows.artifacts import ExtractionProgress, publish_run_report
from avhighlights.flows.concurrency import GPU_TAG, RETRIES, RETRY_DELAYS_S, Timeouts, gpu_slot, retry_transient
from avhighlights.pipeline.extract import ExtractionStats, extract_features
from avhighlights.pipeline.fit_cache import AutoFit
from avhighlights.pipeline.index_html import write_index
from avhighlights.pipeline.probe import probe
from avhighlights.pipeline.progress import null_progress
from avhighlights.pipeline.results import read_results
from avhighlights.pipeline.run import RenderOptions, open_store, video_out_dir, write_outputs
from avhighlights.pipeline.score import (
    ScorerSpec,
    build_sample,
    fits_on_the_fly,
    prepare_scorer,
    score_sample,
    scorer_extractors,
)
from avhighlights.pipeline.select import SelectionConfig, select_segments

FLOW_NAME = "extract-and-score"
DEPLOYMENT = "extract-and-score/extract-and-score"
TASK_OPTIONS = dict(retries=RETRIES, retry_delay_seconds=RETRY_DELAYS_S, retry_condition_fn=retry_transient,
                    cache_policy=NO_CACHE)


def resolve_store(store: str) -> str:
    """The store URL every task uses: "default" is resolved once, in the flow run."""
    return default_store_root() if store == "default" else store


def curve_to_json(curve: ScoreCurve) -> dict[str, Any]:
    return {"scores": curve.scores.tolist(), "start_s": curve.start_s.tolist(), "end_s": curve.end_s.tolist(),
            "method": curve.method, "checkpoint": curve.checkpoint, "meta": dict(curve.meta),
            "extractors": None if curve.extractors is None else {r: s.to_json() for r, s in curve.extractors.items()}}


def curve_from_json(data: dict[str, Any]) -> ScoreCurve:
    extractors = data.get("extractors")
    return ScoreCurve(np.asarray(data["scores"], dtype=np.float64), np.asarray(data["start_s"], dtype=np.float64),
                      np.asarray(data["end_s"], dtype=np.float64), data["method"], data["checkpoint"],
                      dict(data.get("meta") or {}),
                      None if extractors is None else {r: FeatureSource.from_json(s) for r, s in extractors.items()})


@task(name="probe", **TASK_OPTIONS)
def probe_task(video: str) -> dict[str, Any]:
    """Validate the video (typed MediaError, no retry) and describe it, content hash included."""
    return probe(video).to_json()


def scorer_spec(method: str, checkpoint: str | None = None, bind: dict[str, str] | None = None,
                library: list[str] | None = None, fit_seed: int = 0, refit_growth: float = 0.2,
                method_overrides: dict[str, Any] | None = None) -> ScorerSpec:
    """The scorer of a flow run, as `avhighlights score` builds it: `bind` maps role -> extractor; an
    unsupervised method without a checkpoint is fitted on the scored video(s) plus `library` ($AVH_LIBRARY
    when empty) with `method_overrides` (as `--set`), and the fit is cached by content (pipeline/fit_cache.py)."""
    auto = AutoFit(library=tuple(library or ()), seed=fit_seed, refit_growth=refit_growth)
    return ScorerSpec(method=method, checkpoint=checkpoint, method_overrides=method_overrides,
                      binding_overrides=dict(bind or {}) or None, auto_fit=auto)


@task(name="plan", **TASK_OPTIONS)
def plan_task(scoring: dict[str, Any]) -> dict[str, Any]:
    """Extractor name -> device type ("cpu"/"cuda") the method needs, and whether it is fitted on the fly;
    fails fast on a bad method, binding or checkpoint, before any feature is extracted."""
    spec = scorer_spec(**scoring)
    extractors = scorer_extractors(spec)
    return {"extractors": {ex.name: ex.device.type for ex in extractors.values()}, "fit": fits_on_the_fly(spec)}


def fit_on(infos: list[VideoInfo], scoring: dict[str, Any], store: str) -> dict[str, Any]:
    """Fit the unsupervised method of `scoring` on `infos` plus the library, or reuse a cached fit (features
    come from the store); returns the fit's checkpoint and fit.json's content. Call it inside a task."""
    scorer = prepare_scorer(scorer_spec(**scoring), infos, store)
    get_run_logger().info("%s", scorer.fit.message())
    return {"checkpoint": scorer.checkpoint, "fit": scorer.fit.to_json()}


@task(name="fit", **TASK_OPTIONS)
def fit_task(info: dict[str, Any], scoring: dict[str, Any], store: str) -> dict[str, Any]:
    """`fit_on` this video (plus the library)."""
    return fit_on([VideoInfo.from_json(info)], scoring, store)


@task(name="extract", task_run_name="extract-{extractor}", **TASK_OPTIONS)
def extract_task(info: dict[str, Any], extractor: str, store: str) -> dict[str, Any]:
    """Features of one extractor into the store; returns the store key and whether it was a hit."""
    video, ex, feature_store = VideoInfo.from_json(info), create_extractor(extractor), open_store(store)
    stats = ExtractionStats()
    with gpu_slot(ex.device.type):
        extract_features(video, [ex], store=feature_store, stats=stats)
    get_run_logger().info("%s: %s in %.2f s", extractor, "cache hit" if stats.hits else "computed",
                          stats.seconds[extractor])
    return {"extractor": extractor, "key": feature_store.key_for(video.sha256, ex), "hit": bool(stats.hits),
            "seconds": stats.seconds[extractor]}


@task(name="score", **TASK_OPTIONS)
def score_task(info: dict[str, Any], scoring: dict[str, Any], store: str) -> dict[str, Any]:
    """Scores per second from the stored features (an entry lost since extraction is recomputed)."""
    video = VideoInfo.from_json(info)
    scorer = prepare_scorer(scorer_spec(**scoring))
    stats = ExtractionStats()
    tracks = extract_features(video, list(scorer.extractors.values()), store=open_store(store), stats=stats)
    by_role = {role: tracks[ex.name] for role, ex in scorer.extractors.items()}
    curve = score_sample(scorer, video, build_sample(video, by_role))
    return {**curve_to_json(curve), "recomputed": list(stats.misses)}


@task(name="select", **TASK_OPTIONS)
def select_task(curve: dict[str, Any], duration_s: float, selection: dict[str, Any]) -> list[dict[str, Any]]:
    segments = select_segments(curve_from_json(curve), duration_s, SelectionConfig(**selection))
    return [{"start_s": s.start_s, "end_s": s.end_s, "score": s.score, "rank": s.rank} for s in segments]


@task(name="write", **TASK_OPTIONS)
def write_task(info: dict[str, Any], curve: dict[str, Any], segments: list[dict[str, Any]],
               selection: dict[str, Any], out_dir: str, stream_copy: bool, fit: dict[str, Any] | None = None,
               export: list[str] | None = None) -> dict[str, Any]:
    """Clips, reel, highlights.json and exports under `out_dir/<video stem>/` (plus fit.json when the
    method was fitted on the fly)."""
    video = VideoInfo.from_json(info)
    target = video_out_dir(Path(out_dir), video, set())
    result = write_outputs(video, curve_from_json(curve), [Segment(**s) for s in segments],
                           SelectionConfig(**selection), target, _render_options(stream_copy, export), null_progress)
    if fit:
        write_json(target / "fit.json", fit)
    write_index(Path(out_dir))
    doc = read_results(result.results_json)
    for text in result.warnings:
        get_run_logger().warning("%s: %s", video.path, text)
    clips = [{**c.to_json(), "path": str(target / c.path) if c.path else None} for c in doc.clips]
    return {"out_dir": str(target), "results_json": str(result.results_json), "n_clips": result.n_clips,
            "selected_s": result.selected_s, "clips": clips, "reel": str(result.reel_path or ""),
            "warnings": list(result.warnings),
            "render_s": result.timings_s.get("render_s", 0.0)}


def _render_options(stream_copy: bool, export: list[str] | None) -> RenderOptions:
    """`export`: the result files (`avhighlights score --export`); None = all of them."""
    return RenderOptions(stream_copy=stream_copy, **({} if export is None else {"formats": tuple(export)}))


def _extract_all(info: dict[str, Any], plan: dict[str, str], store: str, timeouts: Timeouts,
                 video: str) -> dict[str, dict[str, Any]]:
    """One extractor task per needed extractor (CUDA ones tagged `gpu`), progress artifact updated.

    The tasks run one after the other in the flow's own thread: Prefect enforces `timeout_seconds`
    there with an alarm signal (in a worker thread it could only stop the task once a blocking call
    returns). Videos run in parallel instead (several flow runs, workers or `reprocess-dataset`).
    """
    progress = ExtractionProgress(len(plan), video)
    done = {}
    for name, device_type in plan.items():
        tags = {GPU_TAG} if device_type == "cuda" else set()
        result = extract_task.with_options(tags=tags, timeout_seconds=timeouts.extract)(info, name, store)
        done[name] = result
        progress.advance(name, result["hit"])
    return done


@flow(name=FLOW_NAME, log_prints=True)
def extract_and_score(video: str, method: str = "loudness", checkpoint: str | None = None, top_ratio: float = 0.5,
                      out_dir: str = "highlights_out", min_clip_s: float = 2.0, pad_s: float = 0.0,
                      merge_gap_s: float = 0.0, max_total_s: float | None = None, store: str = "default",
                      stream_copy: bool = False, bind: dict[str, str] | None = None,
                      library: list[str] | None = None, fit_seed: int = 0, refit_growth: float = 0.2,
                      method_overrides: dict[str, Any] | None = None, export: list[str] | None = None,
                      target_s: float | None = None, threshold: float | None = None,
                      threshold_quantile: float | None = None) -> dict[str, Any]:
    """Score one video and write its highlights; returns a JSON-able summary (results_json, n_clips,
    per-extractor cache hits, timings, the score warnings, and the fit used when an unsupervised method was
    fitted on the fly). The selection parameters are those of `avhighlights score` (pipeline/select.py):
    `target_s`, `threshold` or `threshold_quantile` replace `top_ratio`; `max_total_s` caps any of them.
    `bind` maps role -> extractor (e.g. {"visual": "mobilenet_v1_025"}); `library`, `fit_seed`, `refit_growth`
    and `method_overrides` are those of `avhighlights score` (`--set`) for unsupervised methods without a
    checkpoint. `export` names the result files as `--export` does (default: all)."""
    t0, timeouts, store_url = time.monotonic(), Timeouts.from_env(), resolve_store(store)
    _render_options(stream_copy, export)  # an unknown format fails the run before any work
    selection = vars(SelectionConfig(top_ratio, min_clip_s, pad_s, max_total_s, merge_gap_s, target_s=target_s,
                                     threshold=threshold, threshold_quantile=threshold_quantile))  # validates
    scoring = {"method": method, "checkpoint": checkpoint, "bind": bind, "library": library, "fit_seed": fit_seed,
               "refit_growth": refit_growth, "method_overrides": method_overrides}
    info = probe_task.with_options(timeout_seconds=timeouts.probe)(video)
    plan = plan_task.with_options(timeout_seconds=timeouts.score)(scoring)
    features = _extract_all(info, plan["extractors"], store_url, timeouts, video)
    fit = fit_task.with_options(timeout_seconds=timeouts.fit)(info, scoring, store_url) if plan["fit"] else None
    if fit:
        scoring = {**scoring, "checkpoint": fit["checkpoint"]}
    t_features = time.monotonic() - t0
    curve = score_task.with_options(timeout_seconds=timeouts.score)(info, scoring, store_url)
    segments = select_task.with_options(timeout_seconds=timeouts.select)(curve, info["duration_s"], selection)
    written = write_task.with_options(timeout_seconds=timeouts.write)(info, curve, segments, selection, out_dir,
                                                                        stream_copy, fit and fit["fit"], export)
    summary = _summary(video, info, curve, features, written, store_url)
    summary["fit"] = fit and fit["fit"]
    summary["timings_s"] = {"features_s": t_features, "render_s": written["render_s"],
                            "total_s": time.monotonic() - t0}
    publish_run_report(summary, Path(written["out_dir"]) / "scores.png")
    return summary


def _summary(video: str, info: dict[str, Any], curve: dict[str, Any], features: dict[str, dict[str, Any]],
             written: dict[str, Any], store: str) -> dict[str, Any]:
    hits = {name: f["hit"] for name, f in features.items()}
    return {
        "video": str(video), "sha256": info["sha256"], "duration_s": info["duration_s"], "method": curve["method"],
        "checkpoint": curve["checkpoint"], "store": store, "feature_keys": {n: f["key"] for n, f in features.items()},
        "cache_hits": hits, "cache_misses": sorted(n for n, hit in hits.items() if not hit),
        "recomputed_at_score": curve["recomputed"], **{k: v for k, v in written.items() if k != "render_s"},
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(extract_and_score(sys.argv[1], *sys.argv[2:3]), indent=1))
