"""The `extract-and-score` flow: probe -> plan -> one task per extractor (through the feature store) ->
[fit, for an unsupervised method without a checkpoint] -> score -> select -> write clips and results,
with a markdown report and a progress artifact.

Tasks exchange paths, store keys and small JSON documents (the per-second score curve and the
segments), never feature arrays: the feature store is the cache shared by every worker, so an
extractor task is a cheap lookup when the same content was already processed with the same
extractor (whatever the method). Run it locally with `python -m avhighlights.flows.extract_and_score
VIDEO [METHOD]`, serve it with `python -m avhighlights.flows.serve`, then `prefect deployment run
'extract-and-score/extract-and-score' --param video=... --param 'config={"scorer": {"method": "loudness"}}'`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from avhighlights.core.atomic import write_json
from avhighlights.core.errors import ConfigError
from avhighlights.core.sample import FeatureSource
from avhighlights.core.types import ScoreCurve, Segment, VideoInfo
from avhighlights.extractors import create_extractor
from avhighlights.extractors.store import default_store_root
from avhighlights.flows.artifacts import ExtractionProgress, publish_run_report
from avhighlights.flows.concurrency import GPU_TAG, RETRIES, RETRY_DELAYS_S, Timeouts, gpu_slot, retry_transient
from avhighlights.pipeline.extract import ExtractionStats, extract_features
from avhighlights.pipeline.featurize import StoreRef, open_store
from avhighlights.pipeline.index_html import write_index
from avhighlights.pipeline.probe import probe
from avhighlights.pipeline.progress import null_progress
from avhighlights.pipeline.results import read_results
from avhighlights.pipeline.run import video_out_dir, write_outputs
from avhighlights.pipeline.run_config import AutoFit, RunConfig
from avhighlights.pipeline.score import score_video
from avhighlights.pipeline.scorer import create_scorer, parse_scorer_source, source_extractors
from avhighlights.pipeline.select import select_segments

FLOW_NAME = "extract-and-score"
DEPLOYMENT = "extract-and-score/extract-and-score"
TASK_OPTIONS = dict(retries=RETRIES, retry_delay_seconds=RETRY_DELAYS_S, retry_condition_fn=retry_transient,
                    cache_policy=NO_CACHE)


def resolve_store(store: str) -> str:
    """The store URL every task uses: "default" is resolved once, in the flow run."""
    return default_store_root() if store == "default" else store


def flow_config(config: Mapping[str, Any] | RunConfig | None) -> RunConfig:
    """The RunConfig of a flow run (`RunConfig.to_dict`/`changes` output; missing keys take the defaults), as
    `avhighlights score` builds it: an unsupervised method without a checkpoint is fitted on the fly (the
    default AutoFit unless `scorer.auto_fit` says otherwise), and the store (required) is resolved once."""
    run = config if isinstance(config, RunConfig) else RunConfig.from_dict(config)
    if run.store is None:
        raise ConfigError("the flows read features through a feature store: config.store must not be null")
    scorer = run.scorer if run.scorer.auto_fit is not None else replace(run.scorer, auto_fit=AutoFit())
    return replace(run, scorer=scorer, store=resolve_store(run.store))


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


@task(name="plan", **TASK_OPTIONS)
def plan_task(config: dict[str, Any]) -> dict[str, Any]:
    """Extractor name -> device type ("cpu"/"cuda") the method needs, and whether it is fitted on the fly;
    fails fast on a bad method, binding or checkpoint, before any feature is extracted."""
    spec = RunConfig.from_dict(config).scorer
    source = parse_scorer_source(spec)
    extractors = source_extractors(source, spec)
    return {"extractors": {ex.name: ex.device.type for ex in extractors.values()}, "fit": source.kind == "fit"}


def fit_on(infos: list[VideoInfo], config: RunConfig) -> dict[str, Any]:
    """Fit the unsupervised method of `config` on `infos` plus the library, or reuse a cached fit (features
    come from the store); returns the fit's checkpoint and fit.json's content. Call it inside a task."""
    scorer = create_scorer(config.scorer, infos, StoreRef(config.store), notify=get_run_logger().info)
    return {"checkpoint": scorer.checkpoint, "fit": scorer.fit.to_json()}


@task(name="fit", **TASK_OPTIONS)
def fit_task(info: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """`fit_on` this video (plus the library)."""
    return fit_on([VideoInfo.from_json(info)], RunConfig.from_dict(config))


@task(name="extract", task_run_name="extract-{extractor}", **TASK_OPTIONS)
def extract_task(info: dict[str, Any], extractor: str, config: dict[str, Any]) -> dict[str, Any]:
    """Features of one extractor into the store; returns the store key and whether it was a hit."""
    run = RunConfig.from_dict(config)
    overrides = (run.scorer.extractor_overrides or {}).get(extractor)
    video, ex = VideoInfo.from_json(info), create_extractor(extractor, overrides, run.scorer.device)
    feature_store, stats = open_store(run.store), ExtractionStats()
    with gpu_slot(ex.device.type):
        extract_features(video, [ex], store=feature_store, stats=stats)
    get_run_logger().info("%s: %s in %.2f s", extractor, "cache hit" if stats.hits else "computed",
                          stats.seconds[extractor])
    return {"extractor": extractor, "key": feature_store.key_for(video.sha256, ex), "hit": bool(stats.hits),
            "seconds": stats.seconds[extractor]}


@task(name="score", **TASK_OPTIONS)
def score_task(info: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Scores per second from the stored features (an entry lost since extraction is recomputed)."""
    run, video, stats = RunConfig.from_dict(config), VideoInfo.from_json(info), ExtractionStats()
    scorer = create_scorer(run.scorer, notify=get_run_logger().info)  # names a default zoo model
    curve = score_video(scorer, video, open_store(run.store), stats=stats)
    return {**curve_to_json(curve), "recomputed": list(stats.misses)}


@task(name="select", **TASK_OPTIONS)
def select_task(curve: dict[str, Any], duration_s: float, config: dict[str, Any]) -> list[dict[str, Any]]:
    segments = select_segments(curve_from_json(curve), duration_s, RunConfig.from_dict(config).selection)
    return [{"start_s": s.start_s, "end_s": s.end_s, "score": s.score, "rank": s.rank} for s in segments]


@task(name="write", **TASK_OPTIONS)
def write_task(info: dict[str, Any], curve: dict[str, Any], segments: list[dict[str, Any]],
               config: dict[str, Any], out_dir: str, fit: dict[str, Any] | None = None) -> dict[str, Any]:
    """Clips, reel, highlights.json and exports under `out_dir/<video stem>/` (plus fit.json when the
    method was fitted on the fly)."""
    run, video = RunConfig.from_dict(config), VideoInfo.from_json(info)
    target = video_out_dir(Path(out_dir), video, set())
    result = write_outputs(video, curve_from_json(curve), [Segment(**s) for s in segments], run.selection, target,
                           run.render, null_progress)
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


def _extract_all(info: dict[str, Any], plan: dict[str, str], config: dict[str, Any], timeouts: Timeouts,
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
        result = extract_task.with_options(tags=tags, timeout_seconds=timeouts.extract)(info, name, config)
        done[name] = result
        progress.advance(name, result["hit"])
    return done


@flow(name=FLOW_NAME, log_prints=True)
def extract_and_score(video: str, config: dict[str, Any] | None = None,
                      out_dir: str = "highlights_out") -> dict[str, Any]:
    """Score one video and write its highlights under `out_dir/<video stem>/`; returns a JSON-able summary
    (results_json, n_clips, per-extractor cache hits, timings, the score warnings, and the fit used when an
    unsupervised method was fitted on the fly). `config` is a RunConfig as a dict (`RunConfig.to_dict()` or
    only the fields that differ from the defaults, e.g. {"scorer": {"method": "rasl"}, "selection":
    {"target_s": 60}}): the scorer (method, checkpoint or zoo:NAME, binding_overrides, method_overrides,
    device, auto_fit), the selection, the render options and the store, as `avhighlights score` builds them."""
    t0, timeouts = time.monotonic(), Timeouts.from_env()
    run = flow_config(config)  # a bad selection, export format or field fails the run before any work
    plain = run.to_dict()
    info = probe_task.with_options(timeout_seconds=timeouts.probe)(video)
    plan = plan_task.with_options(timeout_seconds=timeouts.score)(plain)
    features = _extract_all(info, plan["extractors"], plain, timeouts, video)
    fit = fit_task.with_options(timeout_seconds=timeouts.fit)(info, plain) if plan["fit"] else None
    if fit:
        plain = replace(run, scorer=replace(run.scorer, checkpoint=fit["checkpoint"])).to_dict()
    t_features = time.monotonic() - t0
    curve = score_task.with_options(timeout_seconds=timeouts.score)(info, plain)
    segments = select_task.with_options(timeout_seconds=timeouts.select)(curve, info["duration_s"], plain)
    written = write_task.with_options(timeout_seconds=timeouts.write)(info, curve, segments, plain, out_dir,
                                                                        fit and fit["fit"])
    summary = _summary(video, info, curve, features, written, run.store)
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

    method = {"scorer": {"method": sys.argv[2]}} if len(sys.argv) > 2 else None
    print(json.dumps(extract_and_score(sys.argv[1], method), indent=1))
