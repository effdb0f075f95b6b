"""Summaries across seeds and the markdown table of a bench result (x100 for mAP/F1, 3 decimals
for rho/tau, the protocol named next to every number). Std is the population std (ddof = 0)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from avhighlights.evaluation.protocols import MetricFormat


def mean_std(values: Sequence[float]) -> dict[str, float]:
    """Mean and population std over the finite values (NaN when there are none)."""
    v = np.array([x for x in values if np.isfinite(x)], dtype=np.float64)
    if not len(v):
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std()), "n": int(len(v))}


def group_means(per_group: Mapping[str, Mapping[str, float]], metric: str) -> float:
    """Mean over groups (categories, domains or folds) of one metric, ignoring NaN."""
    values = [g[metric] for g in per_group.values() if np.isfinite(g[metric])]
    return float(np.mean(values)) if values else float("nan")


def summarise(per_seed: Mapping[int, Mapping[str, Mapping[str, float]]], metrics: Sequence[str],
              std_over: str) -> dict:
    """Per group: mean/std over seeds. Per seed: mean/std over its groups. Overall: mean over groups
    per seed, then mean/std over seeds; with std_over == "folds" mean/std over every (seed, fold)."""
    groups = sorted({g for runs in per_seed.values() for g in runs})
    by_group = {g: {m: mean_std([runs[g][m] for runs in per_seed.values() if g in runs]) for m in metrics}
                for g in groups}
    if std_over == "folds":
        overall = {m: mean_std([r[m] for runs in per_seed.values() for r in runs.values()]) for m in metrics}
    else:
        overall = {m: mean_std([group_means(runs, m) for runs in per_seed.values()]) for m in metrics}
    per_seed_stats = {str(s): {m: mean_std([r[m] for r in runs.values()]) for m in metrics}
                      for s, runs in per_seed.items()}
    return {"groups": by_group, "overall": overall, "per_seed": per_seed_stats, "std_over": std_over}


def format_value(stats: Mapping[str, float], fmt: MetricFormat) -> str:
    """'mean ± std' scaled and rounded as `fmt` says ('–' when undefined)."""
    if not np.isfinite(stats["mean"]):
        return "–"
    mean, std = stats["mean"] * fmt.scale, stats["std"] * fmt.scale
    return f"{mean:.{fmt.decimals}f} ± {std:.{fmt.decimals}f}"


def _table(rows: Sequence[tuple[str, Mapping[str, Mapping[str, float]]]],
           formats: Mapping[str, MetricFormat]) -> list[str]:
    header = "| group | " + " | ".join(f.label for f in formats.values()) + " |"
    lines = [header, "|" + "---|" * (len(formats) + 1)]
    for name, stats in rows:
        lines.append(f"| {name} | " + " | ".join(format_value(stats[m], f) for m, f in formats.items()) + " |")
    return lines


def markdown_report(result: Mapping, formats: Mapping[str, MetricFormat]) -> str:
    """The markdown table of a bench result JSON (see bench.BenchResult.to_json)."""
    summary = result["summary"]
    seeds = result["seeds"]
    if summary["std_over"] == "folds":
        rows = [(f"seed {s} (mean ± std over its folds)", stats) for s, stats in summary["per_seed"].items()]
        rows.append((f"**all {len(seeds)} seeds x folds**", summary["overall"]))
        spread = f"mean ± std over every (seed, fold), {len(seeds)} seeds"
    else:
        rows = list(summary["groups"].items()) + [("**mean over groups**", summary["overall"])]
        spread = f"mean ± std over {len(seeds)} seeds {seeds}"
    config = result["config"]
    head = [f"# {config['method']} on {config['dataset']} — protocol `{config['protocol']}`",
            "", f"Protocol `{config['protocol']}`: {result['notes']}", "",
            f"Numbers: {spread}; mAP/F1 x100, rho/tau raw (3 decimals).", ""]
    config_line = (f"Method config: `{config['method_config']}`; overrides: `{config['method_overrides']}`.")
    wall_line = (f"Wall time {result['wall_s']:.1f} s on {result['machine']['cpu_count']} CPU(s) "
                 f"({result['machine']['platform']}).")
    foot = (collapse_note(result) + training_note(result) + checkpoint_note(result) + ["", config_line, wall_line]
            + merge_note(result))
    return "\n".join(head + _table(rows, formats) + foot) + "\n"


def collapse_note(result: Mapping) -> list[str]:
    """A warning naming every (seed, split) run whose test predictions were near-constant on some videos
    (`collapsed_fraction`: range <= 1e-3 of the scores' scale, see avhighlights.core.near_constant)."""
    runs = [(seed, split, m.get("collapsed_fraction") or 0.0) for seed, splits in result["per_seed"].items()
            for split, m in splits.items()]
    flagged = [(seed, split, f) for seed, split, f in runs if f > 0]
    if not flagged:
        return []
    listed = ", ".join(f"seed {seed} {split} {f:.0%}" for seed, split, f in flagged)
    return ["", f"**Warning: collapsed predictions** in {len(flagged)} of {len(runs)} (seed, split) runs "
                f"(near-constant scores: range at most 1e-3 of their scale) on this fraction of their test videos: "
                f"{listed}. Those videos are ranked by noise or the tie rule, so their metric is a property of the "
                "protocol, not of the model."]


def training_note(result: Mapping) -> list[str]:
    """The epochs that validation selected, over every (seed, split) that reported one (a fit of 0 epochs
    reports -1: nothing was selected)."""
    epochs = [r["best_epoch"] for runs in result.get("fit_reports", {}).values() for r in runs.values()
              if isinstance(r.get("best_epoch"), int) and r["best_epoch"] >= 0]
    if not epochs:
        return []
    return ["", f"Selected epoch (0-based, by validation) over {len(epochs)} (seed, split) runs: min {min(epochs)}, "
                f"median {int(np.median(epochs))}, max {max(epochs)}; per run in result.json `fit_reports`."]


def checkpoint_note(result: Mapping) -> list[str]:
    """Which checkpoint was evaluated (`bench --checkpoint`), or where the trained ones went (`--save-checkpoints`)."""
    evaluated = result["config"].get("checkpoint")
    saved = result.get("extra", {}).get("checkpoints")
    if evaluated:
        seen = evaluated.get("test_videos_seen_in_training", {})
        trained = evaluated.get("trained_on", {})
        line = (f"Evaluated checkpoint `{evaluated['path']}` without training (trained on {trained.get('dataset')}, "
                f"split {trained.get('split')}, seed {trained.get('seed')}).")
        if any(seen.values()):
            line += (" Test videos it saw in training or validation: "
                     + ", ".join(f"{run} {n}" for run, n in seen.items() if n) + ".")
        return ["", line]
    if saved:
        paths = [path for runs in saved.values() for path in runs.values()]
        return ["", f"Saved {len(paths)} checkpoints (one per seed and split, each with a model card) in "
                    f"`{Path(paths[0]).parent}`; result.json `extra.checkpoints` lists them."]
    return []


def merge_note(result: Mapping) -> list[str]:
    """Where a merged result came from (`avhighlights bench-merge`)."""
    parts = result.get("extra", {}).get("merged_from")
    if not parts:
        return []
    return [f"Merged with `avhighlights bench-merge` from {len(parts)} runs (seeds "
            + "; ".join(", ".join(map(str, p["seeds"])) for p in parts) + "); the wall time is their sum."]
