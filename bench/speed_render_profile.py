"""Where one `avhighlights render` spends its time: every child process it spawns, grouped by the pipeline
function that spawned it, with wall and CPU seconds (children's rusage), plus the in-process Python time.

    PYTHONPATH=. python3 bench/speed_render_profile.py OUT/VIDEO/highlights.json [--out PROFILE_DIR] [--cprofile]

Renders a copy of the document into a fresh folder (the original outputs stay as they are) and prints a table:
step, processes, wall s (summed over processes; concurrent ones overlap), CPU s. `--cprofile` also writes
the top functions by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import defaultdict
from pathlib import Path

from avhighlights.pipeline.render import render_from_json

STEP_OF_FUNCTION = {  # the innermost pipeline function on the stack names the step
    "_write_part": "smart-cut part (ffmpeg)",
    "_write_parts": "smart-cut parts (ffmpeg)",
    "_check_decode_lead": "decode-lead probe (ffprobe)",
    "write_clip": "smart-cut join (ffmpeg)",
    "write_clips": "smart-cut clips, one run per clip (ffmpeg)",
    "write_clip_run": "smart-cut clip, one run (ffmpeg)",
    "_encode_clip": "whole-clip re-encode (ffmpeg)",
    "decoded_frames": "check_decodes (ffmpeg decode)",
    "measure_written": "check_written (ffprobe packets)",
    "_joined_reel": "reel join (ffmpeg)",
    "_reel": "reel from source (ffmpeg)",
    "_copy_clip": "stream-copy clip (ffmpeg)",
    "read_timeline": "source timeline (ffprobe)",
    "probe": "source probe (ffprobe)",
    "_video_stream": "smart-cut eligibility (ffprobe)",
    "_encoder_works": "encoder test",
}


class ChildTimer:
    """Every child process's wall and CPU seconds (its own rusage, from wait4) under the step that spawned it
    (the innermost pipeline function in `STEP_OF_FUNCTION` on the spawning thread's stack)."""

    def __init__(self) -> None:
        self.rows: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
        self.started: dict[int, tuple[str, float]] = {}
        self.lock = threading.Lock()
        self.popen_init = subprocess.Popen.__init__
        self.waitpid = os.waitpid

    def install(self) -> None:
        timer = self

        def popen_init(popen, *args, **kwargs):
            timer.popen_init(popen, *args, **kwargs)
            with timer.lock:
                timer.started[popen.pid] = (timer.step(), time.monotonic())

        def waitpid(pid, options):
            done_pid, status, usage = os.wait4(pid, options)
            if done_pid:
                timer.finished(done_pid, usage)
            return done_pid, status

        subprocess.Popen.__init__ = popen_init
        os.waitpid = waitpid

    def finished(self, pid: int, usage) -> None:
        with self.lock:
            step, t0 = self.started.pop(pid, ("?", time.monotonic()))
            row = self.rows[step]
            row[0] += 1
            row[1] += time.monotonic() - t0
            row[2] += usage.ru_utime + usage.ru_stime

    @staticmethod
    def step() -> str:
        names = [frame.name for frame in traceback.extract_stack()[:-3]]
        for name in reversed(names):
            if name in STEP_OF_FUNCTION:
                return STEP_OF_FUNCTION[name]
        return "other: " + next((n for n in reversed(names) if n not in ("run", "__init__", "popen_init")), "?")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("highlights_json", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="folder for the copy rendered (default a temp one)")
    parser.add_argument("--cprofile", action="store_true")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="avh-render-profile-"))
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(args.highlights_json, out / "highlights.json")
    timer = ChildTimer()
    timer.install()
    profiler = cProfile.Profile() if args.cprofile else None
    t0, cpu0 = time.monotonic(), time.process_time()
    if profiler:
        profiler.enable()
    report = render_from_json(out / "highlights.json")
    if profiler:
        profiler.disable()
    wall_s, self_cpu_s = time.monotonic() - t0, time.process_time() - cpu0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"render of {len(report.doc.clips)} clips: wall {wall_s:.2f} s, own CPU {self_cpu_s:.2f} s, children CPU "
          f"{children.ru_utime + children.ru_stime:.2f} s, load {os.getloadavg()[0]:.1f}")
    print("| step | processes | wall s (summed) | CPU s |\n|---|---|---|---|")
    for step, (n, w, c) in sorted(timer.rows.items(), key=lambda kv: -kv[1][2]):
        print(f"| {step} | {n} | {w:.2f} | {c:.2f} |")
    print(f"| total | {sum(r[0] for r in timer.rows.values())} | {sum(r[1] for r in timer.rows.values()):.2f} | "
          f"{sum(r[2] for r in timer.rows.values()):.2f} |")
    if profiler:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(30)
        print(text.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
