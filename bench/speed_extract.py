"""Per-extractor feature extraction for bench/speed.py: each extractor in its own process (so its peak RSS is its
own), timed in-process around `pipeline.extract.extract_features` with an empty feature store (imports and
start-up excluded; the extract call includes loading the weights, decoding and writing the store entry), and
paired with full decodes of the same file before and after it.

Extractors whose pretrained weights are not found in --weights-dir run with random weights of the same
architecture (the same arithmetic, so the same cost), and their row says so.

    python bench/speed_extract.py --one NAME --video V --weights-dir DIR --json OUT.json   (one child)
    python bench/speed_extract.py --list                                                  (registered names)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from speed_measure import measure
from speed_stages import StageContext, decode_full, stage_env


def registered_extractors(timeout_s: float = 300) -> list[str]:
    import subprocess

    done = subprocess.run([sys.executable, __file__, "--list"], capture_output=True, text=True, env=stage_env(),
                          timeout=timeout_s, check=True)
    return done.stdout.split()


def measure_extractors(names: list[str], ctx: StageContext, timeout_s: float, log: Callable[[str], None]) -> dict:
    """{name: row}; each row has the in-process extraction seconds, its ratio to the paired decode, the child's
    peak RSS and which weights it ran with."""
    env = stage_env()
    before = measure(decode_full(ctx), env=env, timeout_s=timeout_s)
    rows = {}
    for name in names:
        out = ctx.work / "extract" / f"{name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        m = measure([sys.executable, __file__, "--one", name, "--video", str(ctx.video), "--weights-dir",
                     str(ctx.weights_dir), "--json", str(out)], env=env, timeout_s=timeout_s)
        after = measure(decode_full(ctx), env=env, timeout_s=timeout_s)
        floor_s = (before.wall_s + after.wall_s) / 2
        before = after
        if m.exit_code != 0 or not out.is_file():
            rows[name] = {"error": f"exit {m.exit_code}: {m.stderr_tail.strip()[-300:]}"}
            log(f"  extract {name} FAILED ({rows[name]['error']})")
            continue
        row = json.loads(out.read_text())
        rows[name] = {**row, "process_wall_s": round(m.wall_s, 3), "peak_rss_mb": round(m.peak_rss_mb, 1),
                      "paired_decode_s": round(floor_s, 3),
                      "ratio_to_full_decode": round(row["extract_s"] / floor_s, 3)}
        log(f"  extract {name} ({row['weights']}) {row['extract_s']:.2f} s = {rows[name]['ratio_to_full_decode']:.2f}x "
            f"decode, {row['video_s_per_s']} video s/s, peak {m.peak_rss_mb:.0f} MB")
    return rows


def weights_overrides(name: str, weights_dir: Path, workdir: Path) -> tuple[dict, str]:
    """Config overrides for `name`: its real weights when every file it loads is in `weights_dir`, else random
    weights of the same architecture; plus a synthetic PCA where the extractor needs one."""
    from extractors import synthetic_pca  # bench/extractors.py, beside this file

    from avhighlights.extractors import EXTRACTORS, create_extractor
    from avhighlights.extractors.weights import get_weight_spec, local_candidates, weights_search_path

    fields = set(EXTRACTORS.get(name).Config.__dataclass_fields__)
    extra = synthetic_pca(workdir) if "pca_path" in fields else {}
    note = " + synthetic PCA (same cost)" if extra else ""
    with weights_search_path([weights_dir]):
        files = create_extractor(name, extra, device="cpu").weight_names()
        found = all(local_candidates(get_weight_spec(f)) for f in files)
    if not files:
        return extra, "none needed" + note
    if found:
        return extra, "real" + note
    if "random_init" in fields:
        return {**extra, "random_init": True}, "random-init (same architecture and cost)" + note
    return extra, "missing (no random-init option)" + note


def run_one(name: str, video: Path, weights_dir: Path, out: Path) -> None:
    from avhighlights.extractors import create_extractor
    from avhighlights.extractors.store import FeatureStore
    from avhighlights.extractors.weights import weights_search_path
    from avhighlights.pipeline.extract import extract_features
    from avhighlights.pipeline.probe import probe

    info = probe(video)
    with tempfile.TemporaryDirectory() as workdir, weights_search_path([weights_dir]):
        overrides, weights = weights_overrides(name, weights_dir, Path(workdir))
        extractor = create_extractor(name, overrides)
        store = FeatureStore(str(Path(workdir) / "store"))
        t0 = time.perf_counter()
        track = extract_features(info, [extractor], store=store)[name]
        extract_s = time.perf_counter() - t0
    row = {"extractor": name, "weights": weights, "device": str(extractor.device), "extract_s": round(extract_s, 3),
           "video_s": round(info.duration_s, 3), "video_s_per_s": round(info.duration_s / extract_s, 2),
           "shape": list(track.values.shape)}
    out.write_text(json.dumps(row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--one")
    parser.add_argument("--video", type=Path)
    parser.add_argument("--weights-dir", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.list:
        from avhighlights.extractors import EXTRACTORS

        print("\n".join(EXTRACTORS.names()))
        return
    run_one(args.one, args.video, args.weights_dir, args.json)


if __name__ == "__main__":
    main()
