"""The extract-and-score deployment on a real local server: served by `python -m
avhighlights.flows.serve` and run with `prefect deployment run ... --watch`; declared in
prefect.yaml for a process work pool with two workers; a worker killed mid-run."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import sys
from pathlib import Path

import psutil
import pytest

pytest.importorskip("prefect")

from prefect_fixtures import FAST_POLL, prefect_cli, spawn, stop, wait_until  # noqa: E402

from avhighlights.extractors import create_extractor  # noqa: E402
from avhighlights.extractors.store import FeatureStore  # noqa: E402
from avhighlights.pipeline.probe import content_sha256  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
DEPLOYMENT = "extract-and-score/extract-and-score"
POOL = "avhighlights-process"


def _client():
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def _deployment_id(name: str = DEPLOYMENT):
    from prefect.exceptions import ObjectNotFound

    with _client() as client:
        try:
            return client.read_deployment_by_name(name).id
        except ObjectNotFound:
            return None


def _flow_run(run_id):
    with _client() as client:
        return client.read_flow_run(run_id)


def _wait_final(run_ids, timeout_s: float) -> list:
    wait_until(lambda: all(_flow_run(r).state.is_final() for r in run_ids), timeout_s, 1.0, "flow runs to finish")
    return [_flow_run(r) for r in run_ids]


def _submit(parameters: dict):
    from prefect.deployments import run_deployment

    return run_deployment(DEPLOYMENT, parameters=parameters, timeout=0).id


def _report(run_id) -> str:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterType

    flt = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]), type=ArtifactFilterType(any_=["markdown"]))
    with _client() as client:
        return client.read_artifacts(artifact_filter=flt)[0].data


def _task_state(run_id, name: str) -> str | None:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with _client() as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
    return next((r.state.type.value for r in runs if r.name == name and r.state), None)


def _kill_tree(process) -> None:
    """SIGKILL a worker and every process it started (a machine going away)."""
    victims = psutil.Process(process.pid).children(recursive=True) + [psutil.Process(process.pid)]
    for victim in victims:
        with contextlib.suppress(psutil.NoSuchProcess):
            victim.send_signal(signal.SIGKILL)
    psutil.wait_procs(victims, timeout=10)
    process.wait(10)


@pytest.fixture(scope="module")
def process_pool(prefect_server):
    """The work pool and the deployment declared in prefect.yaml, created with the Prefect CLI."""
    prefect_cli("work-pool", "create", POOL, "--type", "process", check=False)
    prefect_cli("--no-prompt", "deploy", "--name", "extract-and-score", cwd=REPO_ROOT, timeout_s=180)
    assert _deployment_id() is not None
    return POOL


def _worker(name: str, log: Path, store: Path):
    args = [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--name", name, "--limit", "1",
            "--type", "process"]
    return spawn(args, log, env={**FAST_POLL, "AVH_FEATURE_STORE": str(store)})


def test_served_deployment_round_trip(prefect_server, short_video, tmp_path):
    env = {**FAST_POLL, "AVH_FEATURE_STORE": str(tmp_path / "store")}
    server = spawn([sys.executable, "-m", "avhighlights.flows.serve", "--limit", "2"], tmp_path / "serve.log", env=env)
    try:
        wait_until(lambda: server.poll() is not None or _deployment_id(), 120, 1.0, "the served deployment")
        assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
        out = tmp_path / "out"
        done = prefect_cli("deployment", "run", DEPLOYMENT, "--param", f"video={short_video}",
                           "--param", f"out_dir={out}", "--param", 'config={"selection": {"top_ratio": 0.3}}',
                           "--watch", timeout_s=240)
        assert "completed" in done.stdout.lower(), done.stdout
    finally:
        stop(server)
    clips = sorted((out / short_video.stem).glob("clip_*.mp4"))
    assert clips and (out / short_video.stem / "highlights.json").is_file()
    assert len(list(FeatureStore(tmp_path / "store").keys())) == 1


@pytest.mark.slow  # ~3 min on the shared 2-core CPU: scale-out, not a fault test
def test_two_process_workers_share_one_pool(process_pool, short_video, tmp_path):
    store = tmp_path / "store"
    workers = [_worker(f"w{i}", tmp_path / f"w{i}.log", store) for i in (1, 2)]
    try:
        runs = [_submit({"video": str(short_video), "out_dir": str(tmp_path / f"out{i}"),
                         "config": {"render": {"stream_copy": True}}})
                for i in range(4)]
        finished = _wait_final(runs, 240)
    finally:
        for worker in workers:
            stop(worker)
    assert [r.state.type.value for r in finished] == ["COMPLETED"] * 4
    logs = [(tmp_path / f"w{i}.log").read_text() for i in (1, 2)]
    taken = [{str(r) for r in runs if str(r) in log} for log in logs]
    assert taken[0] and taken[1] and taken[0] | taken[1] == {str(r) for r in runs}, "both workers must take work"
    assert all(r.infrastructure_pid for r in finished)
    assert all(any((tmp_path / f"out{i}" / short_video.stem).glob("clip_*.mp4")) for i in range(4))


def test_worker_killed_mid_run_rerun_reuses_finished_features(process_pool, short_video, tmp_path):
    from test_flows import tiny_checkpoint

    store = tmp_path / "store"
    checkpoint = tiny_checkpoint(tmp_path / "jva.safetensors")  # extractors: logmel, then loudness
    sha = content_sha256(short_video)
    feature_store = FeatureStore(store)
    logmel_key = feature_store.key_for(sha, create_extractor("logmel"))
    params = {"video": str(short_video), "config": {"scorer": {"checkpoint": str(checkpoint)}},
              "out_dir": str(tmp_path / "out")}
    key = feature_store.key_for(sha, create_extractor("loudness"))
    loudness_lock = store / key[:2] / f"{key}.lock"
    loudness_lock.parent.mkdir(parents=True, exist_ok=True)
    with open(loudness_lock, "a+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # the loudness extractor blocks inside get_or_compute
        worker = _worker("doomed", tmp_path / "doomed.log", store)
        try:
            killed_run = _submit(params)
            wait_until(lambda: logmel_key in set(feature_store.keys()), 180, 0.5, "the logmel features")
            wait_until(lambda: _task_state(killed_run, "extract-loudness") == "RUNNING", 60, 0.5, "loudness to run")
        finally:
            _kill_tree(worker)
        fcntl.flock(held.fileno(), fcntl.LOCK_UN)
    assert _flow_run(killed_run).state.type.value == "RUNNING"  # it died with the worker
    assert list(feature_store.keys()) == [logmel_key]
    survivor = _worker("survivor", tmp_path / "survivor.log", store)
    try:
        rerun = _submit(params)
        [finished] = _wait_final([rerun], 180)
    finally:
        stop(survivor)
    assert finished.state.is_completed()
    assert "logmel: hit" in _report(rerun) and "loudness: miss" in _report(rerun)
    assert sorted(feature_store.keys()) == sorted([logmel_key, key]) and feature_store.verify().corrupt == []
    assert any((tmp_path / "out" / short_video.stem).glob("clip_*.mp4"))
    assert os.path.getsize(loudness_lock) == 0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(api_url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{api_url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _run_states(api_url: str) -> dict[str, str]:
    import httpx

    runs = httpx.post(f"{api_url}/flow_runs/filter", json={}, timeout=10).json()
    return {r["id"]: r["state_type"] for r in runs}


def _queue_run(api_url: str, parameters: dict) -> None:
    """Create a scheduled run of the deployment (what `prefect deployment run` does, without a CLI process)."""
    import httpx

    flow_name, name = DEPLOYMENT.split("/")
    deployment = httpx.get(f"{api_url}/deployments/name/{flow_name}/{name}", timeout=30)
    deployment.raise_for_status()
    created = httpx.post(f"{api_url}/deployments/{deployment.json()['id']}/create_flow_run",
                         json={"parameters": parameters}, timeout=30)
    created.raise_for_status()


def test_server_restart_keeps_queued_runs(short_video, tmp_path):
    """A standalone `prefect server start` on a SQLite file: runs queued with no worker survive a
    server restart and complete once a worker starts."""
    port = _free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {**FAST_POLL, "PREFECT_HOME": str(tmp_path / "home"), "PREFECT_API_URL": api_url,
           "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "AVH_FEATURE_STORE": str(tmp_path / "store")}
    server_cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]

    def start_server():
        process = spawn(server_cmd, tmp_path / "server.log", env=env)
        wait_until(lambda: _healthy(api_url), 120, 1.0, "the Prefect server")
        return process

    def cli(*args: str):
        return prefect_cli(*args, env=env, cwd=REPO_ROOT, timeout_s=180)

    server = start_server()
    try:
        cli("work-pool", "create", POOL, "--type", "process")
        cli("--no-prompt", "deploy", "--name", "extract-and-score")
        for i in range(2):  # through the REST API: `prefect deployment run` is covered by the round trip above
            _queue_run(api_url, {"video": str(short_video), "out_dir": str(tmp_path / f"out{i}"),
                                 "config": {"render": {"stream_copy": True}}})
        queued = _run_states(api_url)
        assert len(queued) == 2 and set(queued.values()) == {"SCHEDULED"}
    finally:
        stop(server)
    server = start_server()
    worker = None
    try:
        assert _run_states(api_url) == queued
        worker = spawn([sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--type", "process"],
                       tmp_path / "worker.log", env=env)
        wait_until(lambda: set(_run_states(api_url).values()) <= {"COMPLETED", "FAILED", "CRASHED"}, 240, 1.0,
                   "the queued runs")
        assert set(_run_states(api_url).values()) == {"COMPLETED"}, (tmp_path / "worker.log").read_text()[-3000:]
    finally:
        if worker is not None:
            stop(worker)
        stop(server)
    assert all(any((tmp_path / f"out{i}" / short_video.stem).glob("clip_*.mp4")) for i in range(2))
