"""CPU cost of the dataset-bridge extractors (`i3d`, `i3d_rgb`, `panns_cnn14_2s`) at random weights (same
architecture, same cost as the real ones), per minute of video.

    PYTHONPATH=. python3 bench/bridges_cost.py [--video PATH] [--pairs 4] [--threads N] [--out FILE.json]

It decodes the first 2-s window of the video with the recipe (the video's own frame rate, shorter side 256, centre
crop 224), then times each stage on it with `time.process_time()` (CPU seconds of this process, all threads; on a
shared machine wall time mostly measures the neighbours): the I3D RGB stream on the window, RAFT on `--pairs` frame
pairs (scaled to the window's pairs: RAFT costs the same per pair), the I3D flow stream, and PANNs Cnn14 on one 2-s
window at 32 kHz. Per video-minute = per window x 30. Decoding is timed separately.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DEFAULT_VIDEO = SHARED / "data/media/tears_of_steel_battle_action_70s.webm"
WINDOWS_PER_MINUTE = 30


def timed(fn):
    """(result, CPU seconds, wall seconds) of fn()."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    return result, time.process_time() - cpu, time.perf_counter() - wall


def measure(video: Path, pairs: int) -> dict:
    import numpy as np
    import torch

    from avhighlights.extractors import create_extractor
    from avhighlights.extractors.i3d import flow_to_unit_range, rgb_to_unit_range, window_times
    from avhighlights.extractors.visual import center_crop
    from avhighlights.pipeline.media import open_media
    from avhighlights.pipeline.probe import probe

    info = probe(video)
    i3d = create_extractor("i3d", {"random_init": True}, device="cpu")
    _, per_window, times = window_times(info.duration_s, 2.0, float(info.fps))
    with open_media(info) as media:
        batches = media.frames(times[:per_window], size=i3d.frame_size(info), batch_size=per_window)
        frames, decode_cpu, decode_wall = timed(lambda: next(iter(batches)).frames)
    n_pairs = per_window - 1
    rows: dict = {"video": str(video), "fps": float(info.fps), "frames_per_window": n_pairs,
                  "resized_hw": list(frames.shape[1:3]), "decode_cpu_s": decode_cpu, "decode_wall_s": decode_wall}
    with torch.inference_mode():
        rgb = rgb_to_unit_range(center_crop(frames[:-1], 224), i3d.device)
        _, rows["i3d_rgb_stream_cpu_s"], rows["i3d_rgb_stream_wall_s"] = timed(lambda: i3d.net(rgb))
        for model in ("raft_large", "raft_small"):
            ex = create_extractor("i3d", {"random_init": True, "flow_model": model}, device="cpu")
            flow, cpu, wall = timed(lambda ex=ex: ex.flow(frames[: pairs + 1]))
            rows[f"{model}_per_pair_cpu_s"], rows[f"{model}_per_pair_wall_s"] = cpu / pairs, wall / pairs
        x = flow_to_unit_range(torch.zeros(n_pairs, 2, 224, 224))
        _, rows["i3d_flow_stream_cpu_s"], rows["i3d_flow_stream_wall_s"] = timed(
            lambda: i3d.flow_net(x.permute(1, 0, 2, 3)[None]))
        panns = create_extractor("panns_cnn14_2s", {"random_init": True}, device="cpu")
        wave = np.zeros((1, 64000), dtype=np.float32)
        panns.embed_batch(wave)  # builds the network outside the timing
        _, rows["panns_2s_window_cpu_s"], rows["panns_2s_window_wall_s"] = timed(lambda: panns.embed_batch(wave))
    per_window_rgb = rows["decode_cpu_s"] + rows["i3d_rgb_stream_cpu_s"]
    for model in ("raft_large", "raft_small"):
        rows[f"i3d_{model}_cpu_s_per_video_min"] = WINDOWS_PER_MINUTE * (
            per_window_rgb + n_pairs * rows[f"{model}_per_pair_cpu_s"] + rows["i3d_flow_stream_cpu_s"])
    rows["i3d_rgb_cpu_s_per_video_min"] = WINDOWS_PER_MINUTE * per_window_rgb
    rows["panns_cnn14_2s_cpu_s_per_video_min"] = WINDOWS_PER_MINUTE * rows["panns_2s_window_cpu_s"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--pairs", type=int, default=4, help="RAFT frame pairs timed (scaled to the window)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/bridges.json"))
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    result = measure(args.video, args.pairs)
    result.update({"torch_threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
                   "cores": os.cpu_count(), "load_average_1min_at_end": os.getloadavg()[0],
                   "weights": "random-init (same architecture and cost)"})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
