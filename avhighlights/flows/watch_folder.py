"""The `watch-folder` flow: the library watcher (avhighlights.pipeline.watch) with a Prefect trigger.

Every new, settled, valid video becomes one `extract-and-score` deployment run, created with
`run_deployment(..., timeout=0)` so the watcher never waits for a run; the ledger keeps the run id and
the periodic reconciliation pass reads the run states back (failed or crashed runs are resubmitted up
to `max_attempts` times). Run as a service (until SIGTERM/SIGINT)::

    avhighlights watch --folder IN --out OUT --quarantine Q --state S

(options in avhighlights/cli/watch.py); with `--once` or
`--max-iterations N` it runs as one bounded `watch-folder` flow run instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
import signal
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment

from avhighlights.flows.extract_and_score import DEPLOYMENT
from avhighlights.pipeline.run_config import AutoFit, RunConfig
from avhighlights.pipeline.watch import FolderWatcher, WatchConfig
from avhighlights.pipeline.watch_ledger import COMPLETED, FAILED

log = logging.getLogger(__name__)
ENDED_STATES = {StateType.COMPLETED: COMPLETED, StateType.FAILED: FAILED, StateType.CRASHED: FAILED,
                StateType.CANCELLED: FAILED}


@dataclass(frozen=True)
class DeploymentTrigger:
    """Creates one deployment run per video and returns its id at once (the run executes on a worker)."""

    deployment: str = DEPLOYMENT
    parameters: dict[str, Any] = field(default_factory=dict)  # every flow parameter except `video`

    def __call__(self, path: Path, sha256: str, attempt: int) -> str:
        """The idempotency key makes a retry after a watcher crash (run created, ledger not yet written)
        return the run already created instead of a second one."""
        run = run_deployment(self.deployment, parameters={**self.parameters, "video": str(path)}, timeout=0,
                             as_subflow=False, flow_run_name=f"watch-{path.stem}-{sha256[:8]}",
                             tags=["watch-folder"], idempotency_key=self.idempotency_key(sha256, attempt))
        return str(run.id)

    def idempotency_key(self, sha256: str, attempt: int) -> str:
        settings = hashlib.sha256(json.dumps(self.parameters, sort_keys=True).encode()).hexdigest()[:16]
        return f"watch-folder:{sha256}:{settings}:{attempt}"


def flow_run_state(run_id: str) -> str | None:
    """"completed" or "failed" once the run ended, else None."""
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(run_id)).state
    return None if state is None else ENDED_STATES.get(state.type)


def run_parameters(out_dir: str, config: RunConfig | None = None) -> dict[str, Any]:
    """The extract-and-score parameters of every run: the absolute `out_dir`, and `config` (library folders made
    absolute) as its changes from the defaults, so default runs keep short parameters and stable idempotency
    keys (`{"out_dir": ..., "config": {}}`)."""
    config = config or RunConfig()
    auto = config.scorer.auto_fit
    if auto is not None:  # the flow fits with the default AutoFit when none is sent
        library = tuple(str(Path(p).resolve()) for p in auto.library)
        auto = None if replace(auto, library=library) == AutoFit() else replace(auto, library=library)
        config = replace(config, scorer=replace(config.scorer, auto_fit=auto))
    return {"out_dir": str(Path(out_dir).resolve()), "config": config.changes()}


def make_watcher(folder: str, out_dir: str, quarantine: str, state_dir: str, config: RunConfig | None = None,
                 settle_s: float = 2.0, reconcile_s: float = 30.0, interval_s: float = 1.0,
                 max_attempts: int = 2, deployment: str = DEPLOYMENT) -> FolderWatcher:
    """A library watcher whose trigger creates `deployment` runs and whose run states come from the server;
    every run gets `config` (the RunConfig `avhighlights score` would build: scorer, binding, library, selection,
    store; an unsupervised method without a checkpoint is fitted on the new video plus the library, the cached
    fit reused while the refit policy allows)."""
    watch = WatchConfig(folder=Path(folder).resolve(), state_dir=Path(state_dir), quarantine=Path(quarantine),
                        settle_s=settle_s, reconcile_s=reconcile_s, poll_s=interval_s, max_attempts=max_attempts)
    return FolderWatcher(watch, DeploymentTrigger(deployment, run_parameters(out_dir, config)),
                         run_state=flow_run_state)


@flow(name="watch-folder", log_prints=True)
def watch_folder(folder: str, out_dir: str, quarantine: str, state_dir: str, config: dict[str, Any] | None = None,
                 settle_s: float = 2.0, reconcile_s: float = 30.0, interval_s: float = 1.0,
                 max_attempts: int = 2, once: bool = True, max_iterations: int | None = None,
                 drain_timeout_s: float = 600.0, deployment: str = DEPLOYMENT) -> dict[str, int]:
    """A bounded watch as a flow run (e.g. on a schedule): `once` (scan, submit what settles, return) or
    `max_iterations` polls; returns the counters (submitted, duplicates, quarantined, ...). `config` is the
    RunConfig of every run as a dict (`RunConfig.to_dict`/`changes`).
    The unbounded service is `serve_watch` (a flow run that never ends is no use in the UI)."""
    watcher = make_watcher(folder, out_dir, quarantine, state_dir, RunConfig.from_dict(config), settle_s,
                           reconcile_s, interval_s, max_attempts, deployment)
    logger = get_run_logger()
    logger.info("watching %s -> %s (quarantine %s, state %s)", folder, out_dir, quarantine, state_dir)
    if once:
        stats = watcher.run_once(drain_timeout_s)
    else:
        stats = watcher.run(max_iterations, stop=threading.Event())
    logger.info("watcher counters: %s", dict(stats))
    return dict(stats)


def serve_watch(watcher: FolderWatcher) -> dict[str, int]:
    """Run `watcher` until SIGTERM or SIGINT (outside any flow run: Prefect turns SIGTERM into a crash)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log.info("watching %s (state %s)", watcher.config.folder, watcher.config.state_dir)
    return dict(watcher.run(stop=stop))
