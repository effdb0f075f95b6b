"""The stages bench/speed.py times on each input, each one a whole process (imports and start-up count), and the
paired measurement against the decode floor.

Every stage runs between two `ffmpeg -f null` full decodes of the same file (D S1 D S2 D ...), and its ratio is
its wall time over the mean of the two decodes beside it, so a change in the machine's load during a long run
moves both sides of each ratio alike (the A/B pairing of a paired benchmark). Stages run in list order; a stage
that reads another's output (render reads light's highlights.json, store_hit light_no_clips' store) comes after it.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from speed_measure import Measurement, measure


@dataclass(frozen=True)
class StageContext:
    """Where one input's stages read and write in one round."""

    video: Path
    work: Path  # a fresh folder per (input, round)
    weights_dir: Path

    def out(self, stage: str) -> Path:
        return self.work / stage / "out"

    def store(self, stage: str) -> Path:
        return self.work / stage / "store"

    def highlights_json(self, stage: str) -> Path:
        return self.out(stage) / self.video.stem / "highlights.json"


@dataclass(frozen=True)
class Stage:
    name: str
    what: str  # one line for the results file
    command: Callable[[StageContext], list[str]]
    quick: bool = False  # part of the smallest (test) run


def ffmpeg() -> str:
    return shutil.which("ffmpeg") or "ffmpeg"


def decode_full(ctx: StageContext) -> list[str]:
    return [ffmpeg(), "-v", "error", "-nostdin", "-i", str(ctx.video), "-f", "null", "-"]


def _decode_1fps(ctx: StageContext) -> list[str]:
    return [ffmpeg(), "-v", "error", "-nostdin", "-i", str(ctx.video), "-vf", "fps=1", "-f", "null", "-"]


def _avh(*args: str) -> list[str]:
    return [sys.executable, "-m", "avhighlights", *args, "--progress", "none"]


def _score(ctx: StageContext, stage: str, *extra: str, store_of: str | None = None) -> list[str]:
    return _avh("score", str(ctx.video), "--out", str(ctx.out(stage)), "--store", str(ctx.store(store_of or stage)),
                *extra)


STAGES: tuple[Stage, ...] = (  # cheapest first, so that a long input's run yields the most per hour
    Stage("decode_1fps", "ffmpeg -vf fps=1 -f null (decode, one frame a second kept)", _decode_1fps),
    Stage("light_no_clips", "score --method loudness --no-clips --no-reel, empty store",
          lambda c: _score(c, "light_no_clips", "--method", "loudness", "--no-clips", "--no-reel")),
    Stage("store_hit", "the same again on the store `light_no_clips` filled (no decoding)",
          lambda c: _score(c, "store_hit", "--method", "loudness", "--no-clips", "--no-reel",
                           store_of="light_no_clips")),
    Stage("visual_1fps", "score --method feature_norm (mobilenet_v1_025, real weights) --no-clips --no-reel, "
          "empty store", lambda c: _score(c, "visual_1fps", "--method", "feature_norm", "--weights-dir",
                                          str(c.weights_dir), "--no-clips", "--no-reel")),
    Stage("light", "score --method loudness, clips and reel written, empty store",
          lambda c: _score(c, "light", "--method", "loudness"), quick=True),
    Stage("render_files", "render highlights.json of `light` --no-clips --no-reel (result files only)",
          lambda c: _avh("render", str(c.highlights_json("light")), "--no-clips", "--no-reel")),
    Stage("render", "render highlights.json of `light` (outputs only: clips, reel, result files)",
          lambda c: _avh("render", str(c.highlights_json("light")))),
)


def stage_env() -> dict[str, str]:
    """The children's environment: never download (the real weights come from --weights-dir), the repository's
    package first on the path, single-run caches in the work folder."""
    repo = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "AVH_OFFLINE": "1", "PYTHONPATH": path}


def run_round(stages: list[Stage], ctx: StageContext, timeout_s: float, log: Callable[[str], None],
              on_stage: Callable[[dict], None] = lambda _: None) -> dict:
    """D S1 D S2 ... D for one input: the decodes and, per stage, its measurement plus the paired ratio;
    `on_stage` gets the round so far after each stage."""
    env = stage_env()
    decodes = [measure(decode_full(ctx), env=env, timeout_s=timeout_s)]
    log(f"  decode_full {decodes[-1].wall_s:.2f} s")
    rows = {}
    for stage in stages:
        (ctx.work / stage.name).mkdir(parents=True, exist_ok=True)
        m = measure(stage.command(ctx), env=env, timeout_s=timeout_s)
        decodes.append(measure(decode_full(ctx), env=env, timeout_s=timeout_s))
        floor_s = (decodes[-2].wall_s + decodes[-1].wall_s) / 2
        rows[stage.name] = {**m.to_dict(), "paired_decode_s": round(floor_s, 3),
                            "ratio_to_full_decode": round(m.wall_s / floor_s, 3)}
        status = "" if m.exit_code == 0 else f" FAILED exit {m.exit_code}: {m.stderr_tail.strip()[-300:]}"
        log(f"  {stage.name} {m.wall_s:.2f} s = {m.wall_s / floor_s:.2f}x decode, peak {m.peak_rss_mb:.0f} MB{status}")
        on_stage({"decode_full": summarize_decodes(decodes), "stages": rows})
    return {"decode_full": summarize_decodes(decodes), "stages": rows}


def summarize_decodes(decodes: list[Measurement]) -> dict:
    walls = [d.wall_s for d in decodes]
    return {"runs": len(decodes), "wall_s_median": round(statistics.median(walls), 3),
            "wall_s_min": round(min(walls), 3), "wall_s_max": round(max(walls), 3),
            "cpu_s_median": round(statistics.median(d.cpu_s for d in decodes), 3),
            "peak_rss_mb": round(max(d.peak_rss_mb for d in decodes), 1),
            "exit_codes": sorted({d.exit_code for d in decodes})}
