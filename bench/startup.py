"""The light path's fixed start-up cost (issue #18): `score VIDEO --method loudness --no-cache --no-clips --no-reel`
as a whole process under `/usr/bin/time -v` (wall, user + sys CPU, peak RSS; median of N runs), `--version` alone,
and one `python -X importtime` run summed per top-level package, for one or more package trees (PYTHONPATH) so a
change can be compared with its base on the same machine at the same load.

    python3 bench/startup.py --video V.mp4 --tree after=. --tree before=/tmp/base --runs 5 [--json out.json]

(a 1-min input: `python3 bench/speed_inputs.py --work DIR --lengths 60 --sizes 1280x720`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from speed_imports import analyse, parse_importtime

HEAVY = ("torch", "torchvision", "torchaudio", "timm", "sklearn", "scipy", "matplotlib", "prefect", "pandas")
TIME_FIELDS = {"wall_s": r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)",
               "user_s": r"User time \(seconds\): (\S+)", "sys_s": r"System time \(seconds\): (\S+)",
               "peak_rss_mb": r"Maximum resident set size \(kbytes\): (\d+)"}


def clock_s(text: str) -> float:
    """`h:mm:ss.ss` or `m:ss.ss` -> seconds."""
    seconds = 0.0
    for part in text.split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def parse_time_v(stderr: str) -> dict[str, float]:
    found = {key: re.search(pattern, stderr) for key, pattern in TIME_FIELDS.items()}
    missing = [key for key, match in found.items() if match is None]
    if missing:
        raise RuntimeError(f"/usr/bin/time -v printed no {missing}:\n{stderr[-2000:]}")
    row = {"wall_s": clock_s(found["wall_s"].group(1)), "user_s": float(found["user_s"].group(1)),
           "sys_s": float(found["sys_s"].group(1)), "peak_rss_mb": int(found["peak_rss_mb"].group(1)) / 1024}
    row["cpu_s"] = row["user_s"] + row["sys_s"]
    return row


def timed(command: list[str], env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run(["/usr/bin/time", "-v", *command], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{command} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return parse_time_v(done.stderr)


def median_row(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.median(r[key] for r in rows), 3) for key in rows[0]}


def tree_env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree.resolve()), "AVH_OFFLINE": "1"}


def score_args(video: Path, out: str) -> list[str]:
    return ["score", str(video), "--method", "loudness", "--no-cache", "--no-clips", "--no-reel", "--out", out,
            "--progress", "none"]


def import_profile(tree: Path, video: Path) -> dict:
    """One `-X importtime` run of the light path: the summed import seconds per package, and which heavy ones."""
    with tempfile.TemporaryDirectory() as out:
        traced = subprocess.run([sys.executable, "-X", "importtime", "-m", "avhighlights", *score_args(video, out)],
                                env=tree_env(tree), capture_output=True, text=True, check=True)
    loaded = {row.name.split(".")[0] for row in parse_importtime(traced.stderr)}
    return {"importtime": analyse(traced.stderr), "heavy_imported": [p for p in HEAVY if p in loaded]}


def measure_trees(trees: dict[str, Path], video: Path, runs: int) -> dict[str, dict]:
    """Per tree: the median (and every run) of `score` and of `--version`; the trees take turns run by run, so a
    change in the machine's load falls on all of them alike."""
    rows: dict[str, dict[str, list]] = {label: {"score": [], "version": []} for label in trees}
    with tempfile.TemporaryDirectory() as out:
        for _ in range(runs):
            for label, tree in trees.items():
                env = tree_env(tree)
                rows[label]["score"].append(timed([sys.executable, "-m", "avhighlights", *score_args(video, out)], env))
                rows[label]["version"].append(timed([sys.executable, "-m", "avhighlights", "--version"], env))
    return {label: {"tree": str(trees[label]), "score": median_row(r["score"]), "version": median_row(r["version"]),
                    "score_runs": r["score"], **import_profile(trees[label], video)} for label, r in rows.items()}


def decode_row(video: Path, runs: int) -> dict[str, float]:
    """The median `ffmpeg -f null` full decode of `video` (issue #18's yardstick)."""
    command = ["ffmpeg", "-v", "error", "-nostdin", "-i", str(video), "-f", "null", "-"]
    return median_row([timed(command, dict(os.environ)) for _ in range(runs)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, required=True)
    parser.add_argument("--tree", action="append", required=True, metavar="LABEL=PATH",
                        help="a package tree to put first on PYTHONPATH (repeatable)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    report = {"load_average_before": os.getloadavg(), "cpus": os.cpu_count(),
              "ffmpeg_null_decode": decode_row(args.video, args.runs), "trees": {}}
    trees = {label: Path(path) for label, _, path in (spec.partition("=") for spec in args.tree)}
    report["trees"] = measure_trees(trees, args.video, args.runs)
    for label, row in report["trees"].items():
        print(f"{label}: score {row['score']}  --version {row['version']}  heavy: {row['heavy_imported']}")
    report["load_average_after"] = os.getloadavg()
    print(f"ffmpeg -f null: {report['ffmpeg_null_decode']}; load {report['load_average_before']} -> "
          f"{report['load_average_after']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
