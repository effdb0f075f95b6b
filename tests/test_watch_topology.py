"""The compose topology as processes: docker/entrypoint.sh `worker` and `watcher` against a real local server.

Mapping (docker/compose.yaml -> this test): prefect-server -> the session's `prefect_server` (SQLite
instead of PostgreSQL); worker -> `docker/entrypoint.sh worker` (creates the pool, deploys from
prefect.yaml, runs a process worker); watcher -> `docker/entrypoint.sh watcher`; the volumes watch,
outputs, quarantine, state and feature-store -> temporary folders named by the same AVH_* variables.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from prefect_fixtures import spawn, stop, wait_until

REPO = Path(__file__).resolve().parents[1]
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"


def _statuses(state_dir: Path) -> list[str]:
    path = state_dir / "ledger.json"
    return sorted(rec["status"] for rec in json.loads(path.read_text())["contents"].values()) if path.exists() else []


@pytest.mark.slow
def test_entrypoint_worker_and_watcher_process_a_dropped_video(prefect_server, tmp_path):
    from avhighlights.pipeline.synth import SyntheticSpec, make_synthetic_video

    data = {name: tmp_path / name for name in ("watch", "outputs", "quarantine", "state", "feature-store")}
    env = {"AVH_APP_DIR": str(REPO), "AVH_PYTHON": "python3", "AVH_WATCH_DIR": str(data["watch"]),
           "AVH_OUTPUT_DIR": str(data["outputs"]), "AVH_QUARANTINE_DIR": str(data["quarantine"]),
           "AVH_STATE_DIR": str(data["state"]), "AVH_FEATURE_STORE": str(data["feature-store"]),
           "AVH_WORK_POOL": "avhighlights-process", "AVH_SERVER_WAIT_S": "60"}
    data["watch"].mkdir()
    video = make_synthetic_video(tmp_path / "staging" / "dropped.mp4",
                                 SyntheticSpec(duration_s=6.0, width=160, height=120, fps=10, event_times_s=(2.0,)))
    worker = spawn([str(ENTRYPOINT), "worker"], tmp_path / "worker.log", env=env)
    watcher = spawn([str(ENTRYPOINT), "watcher", "--settle-s", "0.5", "--interval-s", "0.2", "--reconcile-s", "1"],
                    tmp_path / "watcher.log", env=env)
    try:
        shutil.copyfile(video, data["watch"] / video.name)
        (data["watch"] / "garbage.mov").write_bytes(b"not a video\n" * 50)
        wait_until(lambda: _statuses(data["state"]) == ["completed", "quarantined"], timeout_s=300,
                   what="the dropped video's run to complete (logs: worker.log, watcher.log)")
    finally:
        stop(watcher)
        stop(worker)
    assert (data["outputs"] / "dropped" / "highlights.json").is_file()
    assert list((data["outputs"] / "dropped").rglob("*.mp4"))
    assert (data["quarantine"] / "garbage.mov.reason.txt").is_file()
    assert any(data["feature-store"].rglob("*")), "the run did not use AVH_FEATURE_STORE"
