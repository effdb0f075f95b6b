"""Extractor throughput benchmark: seconds of video processed per second of wall time, and peak
memory, for each extractor on one video. Each extractor runs in its own process so its peak RSS is
its own. Extractors whose pretrained weights are not available locally run with random weights of
the same architecture (same cost), and the result says so.

    python bench/extractors.py [--video PATH] [--out bench/results/extractors] [NAME ...]

Rows of extractors not measured in a run are kept from the earlier result.json in --out (same video and
machine). Each row records the 1-minute load average when it started: on a shared machine the numbers are
only comparable at similar load. Visual extractors: bench/results/extractors/visual/.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DEFAULT_VIDEO = SHARED / "data/media/tears_of_steel_battle_action_70s.webm"
REAL_WEIGHTS = {
    "efficientat_mn04": SHARED / "weights/efficientat_mn04_as/mn04_as_mAP_432.pt",
    "mobilenet_v1_025": SHARED / "weights/mobilenet_v1_025_imagenet/mobilenet_v1_025_imagenet_tfslim.pt",
}


def _overrides(name: str, workdir: Path) -> tuple[dict, str]:
    from avhighlights.extractors import EXTRACTORS

    fields = set(EXTRACTORS.get(name).Config.__dataclass_fields__)
    extra = synthetic_pca(workdir) if "pca_path" in fields else {}
    note = " + synthetic PCA (same cost)" if extra else ""
    real = REAL_WEIGHTS.get(name)
    if real is not None and real.is_file() and "weights_path" in fields:
        return {"weights_path": str(real), **extra}, "real" + note
    if "random_init" in fields:
        return {"random_init": True, **extra}, "random-init (same architecture and cost)" + note
    return extra, "none needed" + note


def synthetic_pca(workdir: Path) -> dict:
    """A valid 2048 -> 1024 PCA artifact (zero mean, identity columns, unit eigenvalues): the same arithmetic as
    a fitted one, for extractors that need `pca_path`."""
    import numpy as np

    from avhighlights.extractors.pca import PcaParams, save_pca

    params = PcaParams(np.zeros(2048, np.float32), np.eye(2048, 1024, dtype=np.float32), np.ones(1024, np.float32))
    return {"pca_path": str(save_pca(params, workdir / "synthetic_pca.npz"))}


def _run_one(name: str, video: str, queue) -> None:
    import torch

    from avhighlights.pipeline.probe import probe

    torch.set_num_threads(max(1, torch.get_num_threads()))
    info = probe(video)
    with tempfile.TemporaryDirectory() as workdir:
        overrides, weights = _overrides(name, Path(workdir))
        queue.put(_measure(name, info, overrides, weights))


def _measure(name: str, info, overrides: dict, weights: str) -> dict:
    from avhighlights.extractors import create_extractor
    from avhighlights.pipeline.media import open_media

    extractor = create_extractor(name, overrides)
    load_1m = os.getloadavg()[0]  # other work on the machine slows every number down
    t0 = time.perf_counter()
    track = extractor.extract(open_media(info))
    wall_s = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"extractor": name, "weights": weights, "device": str(extractor.device), "wall_s": round(wall_s, 3),
            "video_s": round(info.duration_s, 3), "video_s_per_s": round(info.duration_s / wall_s, 2),
            "peak_rss_mb": round(peak_mb, 1), "shape": list(track.values.shape), "load_1m": round(load_1m, 1)}


def run(names: list[str], video: Path) -> list[dict]:
    ctx = mp.get_context("spawn")
    rows = []
    for name in names:
        queue = ctx.Queue()
        proc = ctx.Process(target=_run_one, args=(name, str(video), queue))
        proc.start()
        proc.join()
        rows.append(queue.get() if proc.exitcode == 0 else {"extractor": name, "error": f"exit {proc.exitcode}"})
        print(json.dumps(rows[-1]))
    return rows


def write(rows: list[dict], video: Path, out: Path) -> None:
    from avhighlights.core.atomic import write_json, write_text

    device = "CUDA" if _cuda() else "no GPU"
    machine = f"{platform.platform()}, {mp.cpu_count()} CPU(s), {device}"
    rows = _merge_previous(rows, out / "result.json", video, machine)
    write_json(out / "result.json", {"video": str(video), "machine": machine, "rows": rows})
    lines = [f"# Extractor throughput on {video.name}", "", f"Machine: {machine}.", "",
             "| extractor | weights | device | video s / wall s | wall s | peak RSS MB | output | load avg 1 min |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['extractor']} | - | - | failed ({r['error']}) | | | | |")
        else:
            lines.append(f"| {r['extractor']} | {r['weights']} | {r['device']} | {r['video_s_per_s']} | {r['wall_s']} "
                         f"| {r['peak_rss_mb']} | {r['shape'][0]}x{r['shape'][1]} | {r.get('load_1m', '-')} |")
    write_text(out / "results.md", "\n".join(lines) + "\n")


def _merge_previous(rows: list[dict], previous: Path, video: Path, machine: str) -> list[dict]:
    """`rows` plus the earlier rows (same video and machine) of extractors not measured this time, by name."""
    try:
        earlier = json.loads(previous.read_text())
    except (OSError, ValueError):
        return rows
    if earlier.get("video") != str(video) or earlier.get("machine") != machine:
        return rows
    fresh = {r["extractor"] for r in rows}
    kept = [r for r in earlier.get("rows", []) if r.get("extractor") not in fresh]
    return sorted(kept + rows, key=lambda r: r["extractor"])


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def main() -> None:
    from avhighlights.extractors import EXTRACTORS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="extractors (default: all registered)")
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "extractors")
    args = parser.parse_args()
    rows = run(args.names or EXTRACTORS.names(), args.video)
    write(rows, args.video, args.out)


if __name__ == "__main__":
    main()
