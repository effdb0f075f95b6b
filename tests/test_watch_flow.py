"""The watch-folder service against a real local Prefect server and a served extract-and-score deployment."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from prefect_fixtures import FAST_POLL, spawn, stop, wait_until

from avhighlights.pipeline.watch_ledger import COMPLETED, QUARANTINED, SUBMITTED, Ledger

SERVE_CODE = ("from avhighlights.flows.extract_and_score import extract_and_score; "
              "extract_and_score.serve(name='extract-and-score')")


def _short_video(path: Path, first_event_s: float) -> Path:
    from avhighlights.pipeline.synth import SyntheticSpec, make_synthetic_video

    spec = SyntheticSpec(duration_s=6.0, width=160, height=120, fps=10, event_times_s=(first_event_s, 4.0))
    return make_synthetic_video(path, spec)


@pytest.fixture(scope="module")
def served_deployment(prefect_server, tmp_path_factory):
    """`extract_and_score.serve(name="extract-and-score")` in a subprocess, until the module's tests end."""
    from prefect.client.orchestration import get_client

    log = tmp_path_factory.mktemp("serve") / "serve.log"
    process = spawn([sys.executable, "-c", SERVE_CODE], log, env=FAST_POLL)  # picks up a run within 1 s

    def deployment_exists() -> bool:
        with get_client(sync_client=True) as client:
            try:
                client.read_deployment_by_name("extract-and-score/extract-and-score")
            except Exception:  # noqa: BLE001 - ObjectNotFound until `serve` registered it
                assert process.poll() is None, log.read_text()
                return False
        return True

    wait_until(deployment_exists, timeout_s=120, what="the served deployment")
    yield log
    stop(process)


@pytest.fixture
def watch_dirs(tmp_path) -> dict[str, Path]:
    dirs = {name: tmp_path / name for name in ("in", "out", "quarantine", "state")}
    dirs["in"].mkdir()
    return dirs


def _watch_args(dirs: dict[str, Path], *extra: str) -> list[str]:
    return ["--folder", str(dirs["in"]), "--out", str(dirs["out"]), "--quarantine", str(dirs["quarantine"]),
            "--state", str(dirs["state"]), "--settle-s", "0.5", "--interval-s", "0.2", *extra]


def _statuses(state_dir: Path) -> list[str]:
    path = state_dir / "ledger.json"
    return sorted(rec["status"] for rec in json.loads(path.read_text())["contents"].values()) if path.exists() else []


def test_service_sends_good_files_to_the_deployment_and_quarantines_the_bad_one(served_deployment, watch_dirs,
                                                                                 tmp_path):
    staging = tmp_path / "staging"
    staging.mkdir()
    goods = [_short_video(staging / "match one.mp4", 1.0), _short_video(staging / "match_two.mkv", 2.0)]
    (staging / "broken.mp4").write_bytes(goods[0].read_bytes()[:5000])
    watcher = spawn([sys.executable, "-m", "avhighlights", "watch",
                     *_watch_args(watch_dirs, "--reconcile-s", "1")], tmp_path / "watch.log")
    try:
        for source in [*goods, staging / "broken.mp4"]:
            shutil.copyfile(source, watch_dirs["in"] / source.name)
        wait_until(lambda: _statuses(watch_dirs["state"]) == [COMPLETED, COMPLETED, QUARANTINED], timeout_s=240,
                   what="two completed runs and one quarantined file " + (tmp_path / "watch.log").name)
    finally:
        stop(watcher)
    assert watcher.returncode == 0, (tmp_path / "watch.log").read_text()
    for good in goods:
        results = watch_dirs["out"] / good.stem / "highlights.json"
        assert results.is_file(), sorted(p.name for p in watch_dirs["out"].rglob("*"))
        assert list((watch_dirs["out"] / good.stem).rglob("*.mp4")), "no clips written"
    assert (watch_dirs["quarantine"] / "broken.mp4").is_file()
    assert "broken.mp4" in (watch_dirs["quarantine"] / "broken.mp4.reason.txt").read_text()
    assert sorted(p.name for p in watch_dirs["in"].iterdir()) == ["match one.mp4", "match_two.mkv"]


def test_cli_once_submits_new_content_only(served_deployment, watch_dirs, tmp_path):
    from avhighlights.cli.main import main
    from avhighlights.cli.run_config import run_config_from_args
    from avhighlights.cli.watch import build_parser
    from avhighlights.flows.watch_folder import DeploymentTrigger, run_parameters

    video = _short_video(watch_dirs["in"] / "first.mp4", 3.0)
    assert main(["watch", *_watch_args(watch_dirs, "--once")]) == 0
    ledger = Ledger(watch_dirs["state"])
    (sha, record), = ledger.contents.items()
    assert record.status == SUBMITTED and record.run_id
    # a watcher that crashed before writing the ledger would trigger again: the same run comes back
    trigger = DeploymentTrigger(parameters=run_parameters(str(watch_dirs["out"]), run_config_from_args(
        build_parser().parse_args(_watch_args(watch_dirs, "--once")))))
    assert trigger(video, sha, 1) == record.run_id
    shutil.copyfile(video, watch_dirs["in"] / "again.mp4")  # same content under a new name: not submitted
    assert main(["watch", *_watch_args(watch_dirs, "--once")]) == 0
    ledger = Ledger(watch_dirs["state"])
    assert list(ledger.contents) == [sha]
    assert ledger.get(sha).run_id == record.run_id
    assert sorted(Path(name).name for name in ledger.get(sha).names) == ["again.mp4", "first.mp4"]


def test_cli_max_iterations_runs_a_bounded_flow(served_deployment, watch_dirs, capsys):
    from avhighlights.cli.main import main

    assert main(["watch", *_watch_args(watch_dirs, "--max-iterations", "3")]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {}
    assert (watch_dirs["state"] / "heartbeat").is_file()


def test_run_parameters_carry_bind_and_library_only_when_set(tmp_path):
    """`watch --bind/--library` reach every run; without them the parameters (and idempotency keys) are as before."""
    from avhighlights.cli.run_config import run_config_from_args
    from avhighlights.cli.watch import build_parser
    from avhighlights.flows.watch_folder import run_parameters

    base_args = ["--folder", "i", "--out", "o", "--quarantine", "q", "--state", "s", "--method", "rasl", "--once"]
    base = run_parameters(str(tmp_path / "o"), run_config_from_args(build_parser().parse_args(base_args)))
    assert base == {"out_dir": str((tmp_path / "o").resolve()), "config": {"scorer": {"method": "rasl"}}}
    args = build_parser().parse_args([*base_args, "--bind", "visual=mobilenet_v1_025", "--library", "lib"])
    assert args.bind == ["visual=mobilenet_v1_025"] and args.library == ["lib"]
    full = run_parameters(str(tmp_path / "o"), run_config_from_args(args))["config"]["scorer"]
    assert full["binding_overrides"] == {"visual": "mobilenet_v1_025"}
    assert full["auto_fit"]["library"] == [str(Path("lib").resolve())]
