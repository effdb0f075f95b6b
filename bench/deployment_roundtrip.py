"""Deployment round trip and worker scaling for the extract-and-score deployment.

Starts a private `prefect server start` (temporary SQLite database), creates the process work pool
and the deployment from prefect.yaml, then measures:

1. round trip: `prefect deployment run 'extract-and-score/extract-and-score' --param video=... --watch`
   wall time until it returns with the clips on disk, with a cold and then a warm feature store
   (one process worker, method loudness);
2. throughput: N re-muxed copies of the video (same media, different content hash, so every copy
   computes its features) submitted at once to 1 and then 2 process workers (`--limit 1` each).

    python bench/deployment_roundtrip.py [--video PATH] [--copies 4] [--out bench/results/deployment]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = REPO.parent / "shared/data/media/tears_of_steel_battle_action_70s.webm"
DEPLOYMENT = "extract-and-score/extract-and-score"
POOL = "avhighlights-process"


class Bench:
    """A private server, its environment and the processes started against it."""

    def __init__(self, work: Path):
        self.work = work
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.api = f"http://127.0.0.1:{port}/api"
        self.env = {**os.environ, "PREFECT_API_URL": self.api, "PREFECT_HOME": str(work / "home"),
                    "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{work / 'prefect.db'}",
                    "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_WORKER_QUERY_SECONDS": "1",
                    "PREFECT_WORKER_PREFETCH_SECONDS": "2"}
        self.processes: list[subprocess.Popen] = []
        self.port = port

    def spawn(self, args: list[str], log: str) -> subprocess.Popen:
        handle = open(self.work / log, "ab")  # noqa: SIM115 - lives as long as the process
        process = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, env=self.env, cwd=REPO,
                                   start_new_session=True)
        self.processes.append(process)
        return process

    def prefect(self, *args: str, timeout_s: float = 900) -> str:
        done = subprocess.run([sys.executable, "-m", "prefect", *args], capture_output=True, text=True,
                              env=self.env, cwd=REPO, timeout=timeout_s)
        if done.returncode != 0:
            raise RuntimeError(f"prefect {' '.join(args)}: {done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        return done.stdout

    def start_server(self) -> float:
        t0 = time.monotonic()
        self.spawn([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                    "--port", str(self.port)], "server.log")
        while not self._healthy():
            if time.monotonic() - t0 > 300:
                raise RuntimeError("the Prefect server did not start in 300 s")
            time.sleep(0.5)
        return time.monotonic() - t0

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.api}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def start_worker(self, name: str) -> subprocess.Popen:
        return self.spawn([sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--type", "process",
                           "--name", name, "--limit", "1"], f"worker-{name}.log")

    def stop(self, process: subprocess.Popen) -> None:
        import signal

        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(30)

    def flow_run(self, run_id: str) -> dict:
        return httpx.get(f"{self.api}/flow_runs/{run_id}", timeout=10).json()


def _params(video: Path, out: Path, store: Path) -> list[str]:
    return ["--param", f"video={video}", "--param", "method=loudness", "--param", f"out_dir={out}",
            "--param", f"store={store}"]


def round_trip(bench: Bench, video: Path, out: Path, store: Path) -> dict:
    """One `prefect deployment run ... --watch`, timed until it returns; clips checked on disk."""
    t0 = time.monotonic()
    text = bench.prefect("deployment", "run", DEPLOYMENT, *_params(video, out, store), "--watch")
    wall_s = time.monotonic() - t0
    run = bench.flow_run(re.search(r"UUID: ([0-9a-f-]{36})", text).group(1))
    clips = sorted((out / video.stem).glob("clip_*.mp4"))
    if run["state_type"] != "COMPLETED" or not clips:
        raise RuntimeError(f"round trip failed: {run['state_type']}, {len(clips)} clips")
    return {"wall_s": round(wall_s, 2), "flow_run_s": round(run["total_run_time"], 2), "n_clips": len(clips),
            "queue_to_start_s": round(_seconds_between(run["expected_start_time"], run["start_time"]), 2)}


def _seconds_between(a: str, b: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def make_copies(video: Path, n: int, folder: Path) -> list[Path]:
    """Re-muxed copies with a metadata tag each: same media, different content hashes."""
    folder.mkdir(parents=True, exist_ok=True)
    copies = []
    for i in range(n):
        target = folder / f"{video.stem}_copy{i}{video.suffix}"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(video), "-map", "0", "-c", "copy",
                        "-metadata", f"comment=avh-bench-copy-{i}", str(target)], check=True)
        copies.append(target)
    return copies


def throughput(bench: Bench, copies: list[Path], workers: int, root: Path) -> dict:
    """Submit every copy at once to `workers` process workers; seconds until all are complete."""
    started = [bench.start_worker(f"tp{workers}-{i}") for i in range(workers)]
    try:
        time.sleep(3.0)
        t0 = time.monotonic()
        ids = []
        for i, video in enumerate(copies):
            text = bench.prefect("deployment", "run", DEPLOYMENT, *_params(video, root / f"out{i}", root / "store"))
            ids.append(re.search(r"UUID: ([0-9a-f-]{36})", text).group(1))
        while not all(bench.flow_run(r)["state_type"] in ("COMPLETED", "FAILED", "CRASHED") for r in ids):
            time.sleep(0.5)
        elapsed = time.monotonic() - t0
    finally:
        for process in started:
            bench.stop(process)
    states = [bench.flow_run(r)["state_type"] for r in ids]
    return {"workers": workers, "videos": len(copies), "elapsed_s": round(elapsed, 2),
            "videos_per_min": round(60.0 * len(copies) / elapsed, 3), "states": sorted(set(states))}


def write_results(out: Path, result: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result, indent=1))
    rt, tp = result["round_trip"], result["throughput"]
    lines = [
        "# Deployment round trip (extract-and-score, method loudness)", "",
        f"Video: `{result['video']}` ({result['video_duration_s']:.1f} s). Machine: {result['machine']}. "
        f"Load average at start: {result['loadavg_start']}. Command: `{result['command']}`.", "",
        "| case | wall (deployment run --watch) s | flow run s | queue->start s | clips |",
        "|---|---:|---:|---:|---:|",
        *[f"| {name} | {r['wall_s']} | {r['flow_run_s']} | {r['queue_to_start_s']} | {r['n_clips']} |"
          for name, r in rt.items()], "",
        f"Throughput, {tp[0]['videos']} distinct copies submitted at once (process workers, `--limit 1` each):", "",
        "| workers | elapsed s | videos/min |", "|---:|---:|---:|",
        *[f"| {t['workers']} | {t['elapsed_s']} | {t['videos_per_min']} |" for t in tp], "",
        f"Speed-up 1 -> 2 workers: {result['speedup_2_workers']:.2f}x. Server start: {result['server_start_s']} s.",
    ]
    (out / "results.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    p.add_argument("--copies", type=int, default=4)
    p.add_argument("--out", type=Path, default=REPO / "bench/results/deployment")
    args = p.parse_args(argv)
    from avhighlights.pipeline.probe import probe

    work = Path(tempfile.mkdtemp(prefix="avh-deploy-bench-"))
    bench = Bench(work)
    result = {"video": str(args.video), "video_duration_s": probe(args.video).duration_s,
              "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.python_version()}",
              "loadavg_start": [round(x, 2) for x in os.getloadavg()], "work_dir": str(work),
              "command": "python " + " ".join(["bench/deployment_roundtrip.py", *(argv or sys.argv[1:])])}
    try:
        result["server_start_s"] = round(bench.start_server(), 2)
        bench.prefect("work-pool", "create", POOL, "--type", "process")
        bench.prefect("--no-prompt", "deploy", "--name", "extract-and-score")
        worker = bench.start_worker("rt")
        time.sleep(3.0)
        store = work / "store-roundtrip"
        result["round_trip"] = {"cold": round_trip(bench, args.video, work / "rt-cold", store),
                                "warm": round_trip(bench, args.video, work / "rt-warm", store),
                                "warm_again": round_trip(bench, args.video, work / "rt-warm2", store)}
        bench.stop(worker)
        copies = make_copies(args.video, args.copies, work / "copies")
        result["throughput"] = [throughput(bench, copies, n, work / f"tp{n}") for n in (1, 2)]
        result["speedup_2_workers"] = result["throughput"][0]["elapsed_s"] / result["throughput"][1]["elapsed_s"]
        result["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        for process in bench.processes:
            bench.stop(process)
    write_results(args.out, result)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
