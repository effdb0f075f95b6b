"""Synthetic test videos made with ffmpeg: scene changes and audible events at known times.

Used by the embedded demo and by the tests. The visual track is a sequence of solid-colour scenes
with a moving test pattern; the audio is quiet pink noise with loud tone bursts at `event_times_s`.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from avhighlights.core.atomic import atomic_path
from avhighlights.pipeline.ffargs import safe_media_arg

SCENE_COLOURS = ("0x1f77b4", "0xff7f0e", "0x2ca02c", "0xd62728", "0x9467bd", "0x8c564b")
NOISE_SEED = 20240601  # fixed: the same spec gives the same file, so the demo and the tests are reproducible


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate. Events are loud 1-kHz bursts of `event_len_s` starting at each time."""

    duration_s: float = 20.0
    width: int = 320
    height: int = 240
    fps: int = 25
    scene_len_s: float = 5.0
    event_times_s: tuple[float, ...] = (3.0, 11.0, 16.0)
    event_len_s: float = 1.5
    with_audio: bool = True
    sample_rate: int = 44100
    rotation_deg: int = 0  # written as the stream's rotate tag (a display matrix)
    variable_frame_rate: bool = False
    video_codec: str = "libx264"


def ffmpeg_binary() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise RuntimeError("ffmpeg is not installed (Debian: apt-get install ffmpeg)")
    return path


def _video_filter(spec: SyntheticSpec) -> str:
    n_scenes = max(1, int(-(-spec.duration_s // spec.scene_len_s)))
    parts = []
    for i in range(n_scenes):
        colour = SCENE_COLOURS[i % len(SCENE_COLOURS)]
        parts.append(f"color=c={colour}:s={spec.width}x{spec.height}:r={spec.fps}:d={spec.scene_len_s}[c{i}]")
    chain = ";".join(parts) + ";" + "".join(f"[c{i}]" for i in range(n_scenes))
    chain += f"concat=n={n_scenes}:v=1:a=0,trim=duration={spec.duration_s}[bg];"
    chain += f"testsrc2=s={spec.width // 3}x{spec.height // 3}:r={spec.fps}:d={spec.duration_s}[fg];"
    chain += "[bg][fg]overlay=x='mod(t*40,W-w)':y='(H-h)/2'"
    if spec.variable_frame_rate:
        chain += ",select='not(between(t\\,2\\,4)*mod(n\\,3))',setpts=PTS"
    return chain + "[v]"


def _audio_filter(spec: SyntheticSpec) -> str:
    # 960-sample frames suit every encoder used here (AAC, and Opus for .webm at 48 kHz).
    bursts = "+".join(
        f"between(t,{t:.3f},{t + spec.event_len_s:.3f})" for t in spec.event_times_s
    ) or "0"
    tone = f"0.8*sin(2*PI*1000*t)*({bursts})"
    return (
        f"anoisesrc=color=pink:amplitude=0.02:seed={NOISE_SEED}:d={spec.duration_s}:r={spec.sample_rate}[n];"
        f"aevalsrc='{tone}':d={spec.duration_s}:s={spec.sample_rate}[t];"
        "[n][t]amix=inputs=2:normalize=0,asetnsamples=n=960[a]"
    )


def make_synthetic_video(path: str | Path, spec: SyntheticSpec | None = None) -> Path:
    """Render `spec` to `path` (container chosen by the suffix) and return the path."""
    spec = spec or SyntheticSpec()
    path = Path(path)
    if path.suffix.lower() in (".webm", ".ogg") and spec.sample_rate != 48000:
        spec = dataclasses.replace(spec, sample_rate=48000)  # Opus runs at 48 kHz
    graph = _video_filter(spec)
    maps = ["-map", "[v]"]
    if spec.with_audio:
        graph += ";" + _audio_filter(spec)
        webm = path.suffix.lower() in (".webm", ".ogg")
        maps += ["-map", "[a]", "-c:a", "libopus" if webm else "aac", "-b:a", "96k"]
    cmd = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", "-filter_complex", graph, *maps,
           "-c:v", spec.video_codec, "-pix_fmt", "yuv420p", "-g", str(spec.fps)]
    if spec.variable_frame_rate:
        cmd += ["-fps_mode", "vfr"]
    if spec.video_codec == "libx264":
        cmd += ["-preset", "ultrafast"]
    with atomic_path(path) as tmp:
        out = tmp.with_suffix(path.suffix)
        subprocess.run([*cmd, safe_media_arg(out)], check=True, capture_output=True)
        if spec.rotation_deg:
            _set_rotation(out, spec.rotation_deg)
        out.replace(tmp)
    return path


def _set_rotation(path: Path, rotation_deg: int) -> None:
    rotated = path.with_name(path.stem + ".rot" + path.suffix)
    subprocess.run(
        [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", "-i", safe_media_arg(path), "-c", "copy",
         "-metadata:s:v:0", f"rotate={rotation_deg}", safe_media_arg(rotated)],
        check=True, capture_output=True,
    )
    rotated.replace(path)
