"""Synthetic inputs for bench/speed.py: ffmpeg's testsrc2 picture with pink noise and loud 880-Hz events,
H.264 (libx264, fixed GOP) + AAC in MP4, cached under a work folder by every parameter that shapes the file.

    python bench/speed_inputs.py --work DIR --lengths 60,600,3600@640x360@25 --sizes 1280x720 [--fps 30]

(the benchmark calls `ensure_input`; the command line pre-generates inputs, e.g. overnight).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

GENERATOR_VERSION = 1  # bump when the recipe below changes: cached files then no longer match
EVENT_PERIOD_S = 37  # a 2-s loud event every 37 s (a prime, so events drift across GOP boundaries)
EVENT_LEN_S = 2


@dataclass(frozen=True)
class InputSpec:
    """One synthetic video: `length_s` seconds of `width`x`height` at `fps`, keyframe every `gop` frames."""

    length_s: int
    width: int = 1280
    height: int = 720
    fps: int = 30
    gop: int = 60
    preset: str = "superfast"
    sample_rate: int = 48000

    @property
    def key(self) -> str:
        return (f"testsrc2_{self.width}x{self.height}_{self.fps}fps_{self.length_s}s_g{self.gop}_{self.preset}"
                f"_{self.sample_rate}hz_v{GENERATOR_VERSION}")

    @property
    def label(self) -> str:
        return f"{self.length_s} s {self.width}x{self.height}@{self.fps}"


def parse_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    return int(width), int(height)


def parse_inputs(lengths: str, sizes: str, fps: int) -> list[InputSpec]:
    """`lengths` is comma-separated `SECONDS[@WxH[@FPS]]` (e.g. `60,600,3600@640x360@25`): a length without its
    own size is made at every one of `sizes` (comma-separated `WxH`) and `fps`."""
    specs = []
    for token in filter(None, (t.strip() for t in lengths.split(","))):
        seconds, *own = token.strip().split("@")
        if own:
            width, height = parse_size(own[0])
            specs.append(InputSpec(int(seconds), width, height, int(own[1]) if len(own) > 1 else fps))
            continue
        specs.extend(InputSpec(int(seconds), *parse_size(size), fps) for size in sizes.split(","))
    return specs


def ffmpeg_command(spec: InputSpec, target: Path) -> list[str]:
    d = spec.length_s
    tone = f"0.7*sin(2*PI*880*t)*lt(mod(t\\,{EVENT_PERIOD_S})\\,{EVENT_LEN_S})"
    return [shutil.which("ffmpeg") or "ffmpeg", "-v", "error", "-nostdin", "-y",
            "-f", "lavfi", "-i", f"testsrc2=s={spec.width}x{spec.height}:r={spec.fps}:d={d}",
            "-f", "lavfi", "-i", f"anoisesrc=color=pink:amplitude=0.03:r={spec.sample_rate}:d={d}",
            "-f", "lavfi", "-i", f"aevalsrc={tone}:s={spec.sample_rate}:d={d}",
            "-filter_complex", "[1][2]amix=inputs=2:normalize=0[a]", "-map", "0:v", "-map", "[a]",
            "-c:v", "libx264", "-preset", spec.preset, "-g", str(spec.gop), "-keyint_min", str(spec.gop),
            "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-shortest",
            "-movflags", "+faststart", "-f", "mp4", str(target)]


def ensure_input(spec: InputSpec, work: Path) -> Path:
    """The cached file for `spec` under `work`, generated (atomically) when absent."""
    path = work / "inputs" / f"{spec.key}.mp4"
    while not path.is_file() and _generating_elsewhere(path):
        time.sleep(5)  # another run is making this very file: use its result
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        subprocess.run(ffmpeg_command(spec, partial), check=True, capture_output=True)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def _generating_elsewhere(path: Path) -> bool:
    """Whether a live process other than this one is writing `path` (its `.NAME.PID.partial` file exists)."""
    for partial in path.parent.glob(f".{path.name}.*.partial"):
        pid = int(partial.name.rsplit(".", 2)[-2])
        if pid != os.getpid() and Path(f"/proc/{pid}").exists():
            return True
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--lengths", default="60", help="comma-separated SECONDS[@WxH[@FPS]]")
    parser.add_argument("--sizes", default="1280x720", help="comma-separated WxH")
    parser.add_argument("--fps", type=int, default=30)
    args = parser.parse_args()
    for spec in parse_inputs(args.lengths, args.sizes, args.fps):
        print(ensure_input(spec, args.work), flush=True)


if __name__ == "__main__":
    main()
