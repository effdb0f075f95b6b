"""End-to-end speed and memory benchmark against the decode floor.

Generates (and caches) synthetic videos of several lengths, then for each one times, side by side in one run,
`ffmpeg -f null` full decode (the floor), the 1-fps decode and each stage of `avhighlights` as a whole process
(imports and start-up count): the light path with clips and reel, the same without them, outputs alone
(`render`), result files alone, re-scoring from the feature store, the 1-fps visual path (mobilenet_v1_025 with
its real weights). Each is reported as a ratio to a full decode of the same file run next to it, with its peak
RSS; plus per-extractor extraction in-process and the light path's import costs. Writes results.json and
results.md under --out.

    python3 bench/speed.py --out bench/results/speed [--lengths 60,600,3600] [--sizes 1280x720] [--quick]

--lengths takes SECONDS[@WxH[@FPS]] items (e.g. 60,600,3600@640x360@25). --quick: 20-s and 60-s inputs at
640x360@25, two extractors (meant to take about 3 minutes on an idle 2-core machine). Synthetic inputs are
cached under --work.
--merge OTHER/results.json (repeatable) adds the inputs measured by other runs on the same machine (e.g. the 60-min
one run on its own) to this run's tables; with --merge and no --lengths nothing new is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import speed_report
from speed_extract import measure_extractors, registered_extractors
from speed_imports import light_path_imports
from speed_inputs import InputSpec, ensure_input, parse_inputs
from speed_stages import STAGES, Stage, StageContext, run_round

from avhighlights.core.atomic import write_json, write_text

REPO = Path(__file__).resolve().parents[1]
SHARED_WEIGHTS = Path(os.environ.get("AVH_DATA_ROOT", REPO.parent / "shared" / "data")).parent / "weights"
SCHEMA = "avhighlights/bench-speed/1"
QUICK_LENGTHS = "20@640x360@25,60@640x360@25"
QUICK_EXTRACTORS = "loudness,mobilenet_v1_025"
NO_GPU = "none: no GPU was lent to this task (CPU only; the GPU target is not measured)"


def log(text: str) -> None:
    print(text, flush=True)


def machine(load_start: tuple[float, ...]) -> dict:
    return {"platform": platform.platform(), "cpu": _cpu_model(), "cores": os.cpu_count(),
            "load_avg_start": [round(x, 2) for x in load_start], "load_avg_end": None,
            "ffmpeg": _first_line(["ffmpeg", "-version"]), "python": platform.python_version(),
            "gpu": _gpu() or NO_GPU}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _first_line(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=60).stdout.splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return f"{command[0]}: unavailable"


def _gpu() -> str | None:
    """The GPU's name from nvidia-smi, or None (then the results say no GPU was lent)."""
    if shutil.which("nvidia-smi") is None:
        return None
    name = _first_line(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"])
    return None if name.endswith("unavailable") else name


def merge_rounds(rounds: list[dict]) -> dict:
    """Per stage across rounds: median wall, CPU and ratio; the largest peaks; every exit code non-zero wins."""
    stages = {}
    for name in rounds[0]["stages"]:
        rows = [r["stages"][name] for r in rounds]
        stages[name] = {"wall_s": _median(rows, "wall_s"), "cpu_s": _median(rows, "cpu_s"),
                        "ratio_to_full_decode": _median(rows, "ratio_to_full_decode"),
                        "paired_decode_s": _median(rows, "paired_decode_s"),
                        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in rows), 1),
                        "peak_tree_rss_mb": round(max(r["peak_tree_rss_mb"] for r in rows), 1),
                        "exit_code": next((r["exit_code"] for r in rows if r["exit_code"] != 0), 0),
                        "rounds": [{k: r[k] for k in ("wall_s", "ratio_to_full_decode")} for r in rows]}
        failed = next((r for r in rows if r["exit_code"] != 0), None)
        if failed:
            stages[name]["stderr_tail"] = failed["stderr_tail"][-1000:]
    decodes = [r["decode_full"] for r in rounds]
    decode = {**decodes[0], "wall_s_median": round(statistics.median(d["wall_s_median"] for d in decodes), 3),
              "runs": sum(d["runs"] for d in decodes)}
    return {"decode_full": decode, "stages": stages}


def _median(rows: list[dict], key: str) -> float:
    return round(statistics.median(r[key] for r in rows), 3)


def bench_input(spec: InputSpec, video: Path, stages: list[Stage], args: argparse.Namespace,
                on_partial=lambda _: None) -> dict:
    """The input's entry; `on_partial` gets the entry so far after every stage (a long input keeps its stages)."""
    entry = {"input": spec.label, "length_s": spec.length_s, "width": spec.width, "height": spec.height,
             "fps": spec.fps, "gop": spec.gop, "x264_preset": spec.preset, "file": str(video),
             "bytes": video.stat().st_size}
    rounds = []
    for i in range(args.rounds):
        log(f"{spec.label}: round {i + 1}/{args.rounds}")
        with tempfile.TemporaryDirectory(dir=args.work, prefix="run-") as work:
            ctx = StageContext(video=video, work=Path(work), weights_dir=args.weights_dir)
            rounds.append(run_round(stages, ctx, args.timeout_s, log,
                                    on_stage=lambda r: on_partial({**entry, **merge_rounds([*rounds, r]),
                                                                   "partial": True})))
    return {**entry, **merge_rounds(rounds)}


def bench_extractors(names: list[str], spec: InputSpec, video: Path, args: argparse.Namespace) -> dict:
    """Extraction per extractor on `video` (the longest input within --extract-max-s)."""
    log(f"{spec.label}: extractors {', '.join(names)}")
    with tempfile.TemporaryDirectory(dir=args.work, prefix="extract-") as work:
        ctx = StageContext(video=video, work=Path(work), weights_dir=args.weights_dir)
        rows = measure_extractors(names, ctx, args.timeout_s, log)
    return {"input": spec.label, "length_s": spec.length_s, "rows": rows}


def _extractor_names(args: argparse.Namespace) -> list[str]:
    if args.extractors == "none":
        return []
    if args.extractors == "all":
        return registered_extractors()
    return [n.strip() for n in args.extractors.split(",") if n.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "speed")
    parser.add_argument("--lengths", default=None,
                        help=f"SECONDS[@WxH[@FPS]],... (default 60,600,3600; --quick {QUICK_LENGTHS})")
    parser.add_argument("--sizes", default="1280x720", help="WxH,... for lengths without their own size")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help=f"lengths {QUICK_LENGTHS}, extractors {QUICK_EXTRACTORS}")
    parser.add_argument("--stages", default="all", help="comma-separated stage names, or all: "
                        + ",".join(s.name for s in STAGES))
    parser.add_argument("--extractors", default=None,
                        help="comma-separated names, all (registered) or none (default all; --quick: two)")
    parser.add_argument("--extract-max-s", type=float, default=60.0,
                        help="extractors run on the longest input at most this long (default 60)")
    parser.add_argument("--no-imports", action="store_true", help="skip the -X importtime analysis")
    parser.add_argument("--rounds", type=int, default=1, help="rounds per input; medians are reported")
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "avhighlights" / "bench-speed")
    parser.add_argument("--weights-dir", type=Path, default=SHARED_WEIGHTS)
    parser.add_argument("--timeout-s", type=float, default=3600.0, help="limit for any one process")
    parser.add_argument("--merge", type=Path, action="append", default=[], metavar="RESULTS_JSON",
                        help="results.json of another run on this machine whose inputs join this run's tables")
    parser.add_argument("--notes", type=Path, default=None, help="a markdown file appended to results.md (findings)")
    args = parser.parse_args(argv)
    default_lengths = "" if args.merge else QUICK_LENGTHS if args.quick else "60,600,3600"
    args.lengths = default_lengths if args.lengths is None else args.lengths
    args.extractors = args.extractors or (QUICK_EXTRACTORS if args.quick else "all")
    return args


def selected_stages(text: str) -> list[Stage]:
    if text == "all":
        return list(STAGES)
    wanted = {n.strip() for n in text.split(",")}
    unknown = wanted - {s.name for s in STAGES}
    if unknown:
        raise SystemExit(f"unknown stage(s): {', '.join(sorted(unknown))}")
    return [s for s in STAGES if s.name in wanted]


def merge_runs(doc: dict, others: list[Path]) -> None:
    """Add the inputs (and, where this run has none, the extractor and import tables) of other runs' results."""
    for path in others:
        other = json.loads(path.read_text())
        doc.setdefault("merged_from", []).append({k: other.get(k) for k in ("command", "started_utc", "finished_utc",
                                                                           "machine")} | {"file": str(path)})
        measured = {e["input"] for e in doc["per_input"]}
        doc["per_input"] += [e for e in other.get("per_input", []) if e["input"] not in measured]
        for key in ("extractors", "imports"):
            doc[key] = doc.get(key) or other.get(key)
    doc["per_input"].sort(key=lambda e: e["length_s"])


def write_results(doc: dict, stages: list[Stage], out: Path, finished: bool) -> None:
    doc["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    doc["finished_utc"] = datetime.now(UTC).isoformat(timespec="seconds") if finished else "(still running)"
    doc["targets"] = speed_report.targets(doc["per_input"], _gpu())
    doc["memory"] = speed_report.memory(doc["per_input"])
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", doc)
    notes = {"decode_full": "ffmpeg -f null, every frame and the audio decoded (the floor)",
             **{s.name: s.what for s in stages}}
    write_text(out / "results.md", speed_report.markdown(doc, notes))
    if finished:
        log(f"wrote {out / 'results.json'} and results.md")


def _keeper(doc: dict, done: list[dict], stages: list[Stage], out: Path):
    """Writes the results with `partial` (the current input so far) after the inputs already `done`."""
    def keep(partial: dict) -> None:
        doc["per_input"] = [*done, partial]
        write_results(doc, stages, out, finished=False)

    return keep


def main(argv: list[str] | None = None) -> dict:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds through measure(), which kills its child
    args = parse_args(argv)
    stages = selected_stages(args.stages)
    if not args.weights_dir.is_dir():
        raise SystemExit(f"--weights-dir {args.weights_dir}: no such folder (the real mobilenet_v1_025 weights; "
                         "see /work/shared/weights/*/SOURCES.md or set AVH_DATA_ROOT)")
    args.work.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    doc = {"schema": SCHEMA, "command": shlex.join(["python3", "bench/speed.py", *(argv or sys.argv[1:])]),
           "started_utc": started, "rounds": args.rounds, "machine": machine(os.getloadavg())}
    specs = sorted(parse_inputs(args.lengths, args.sizes, args.fps), key=lambda spec: spec.length_s)
    names = _extractor_names(args)
    doc.update(per_input=[], extractors=None, imports=None)
    for i, spec in enumerate(specs):  # shortest first; each input made (or found in the cache) just before its turn
        log(f"input {spec.label}: {spec.key}")
        video = ensure_input(spec, args.work)
        done = list(doc["per_input"])
        entry = bench_input(spec, video, stages, args, on_partial=_keeper(doc, done, stages, args.out))
        doc["per_input"] = [*done, entry]
        if i == 0 and not args.no_imports:
            log("imports of the light path (-X importtime)")
            doc["imports"] = light_path_imports(video, args.timeout_s)
        last_within_cap = spec.length_s <= args.extract_max_s and (
            i + 1 == len(specs) or specs[i + 1].length_s > args.extract_max_s)
        if names and last_within_cap:
            doc["extractors"] = bench_extractors(names, spec, video, args)
        write_results(doc, stages, args.out, finished=False)  # a long run keeps what it has measured
    merge_runs(doc, args.merge)
    if args.notes:
        doc["notes"] = args.notes.read_text()
    write_results(doc, stages, args.out, finished=True)
    return doc


if __name__ == "__main__":
    main()
