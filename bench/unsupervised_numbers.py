"""The numbers table of issue #14 for the unsupervised detectors (recurrence, RASL), read from bench result folders.

Every cell is read from `result.json` files under `bench/results/` (no number is typed in): mean +- population std
over the seeds of the folders listed in CELLS (several folders of one cell hold disjoint seeds, e.g. the one-seed
folders of `bench/rasl_ablation.py`). The done-when check compares `ours` with `random` and the `feature_norm` floor
per seed: paired by seed on `tvsum_random80` (each seed is its own 80/20 split), against the reference's mean
elsewhere (the same test videos for every seed).

    python3 bench/unsupervised_numbers.py --results bench/results > /tmp/numbers.md
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DOMAINS = ("dog", "gymnastics", "parkour", "skating")
COLLAPSED = 0.5  # the guard's criterion: near-constant scores on more than half of the videos


@dataclass(frozen=True)
class Column:
    """One protocol: its header, its metric key and whether it has YouTube's four domains."""

    header: str
    metric: str
    per_domain: bool
    paired_by_seed: bool  # the test videos depend on the seed (tvsum_random80)


COLUMNS: dict[str, Column] = {
    "youtube": Column("YouTube per_domain mAP", "map", True, False),
    "random80": Column("TVSum random80 top-5 (UMT)", "top5_map_umt", False, True),
    "y2t": Column("YouTube->TVSum top-5 (UMT)", "top5_map_umt", False, False),
    "t2y": Column("TVSum->YouTube mAP", "map", True, False),
}

# (method, row) -> column -> result folders (relative to --results); a string instead of folders is the reason
# the cell was not measured.
CELLS: dict[tuple[str, str], dict[str, Sequence[str] | str]] = {
    ("recurrence", "paper"): {
        "youtube": ["youtube_highlights-per_domain-recurrence"],
        "random80": ["tvsum-random80-recurrence"],
        "y2t": "network not run; pseudo-scores direct: `youtube_to_tvsum-recurrence_paper_direct`",
        "t2y": "not run",
    },
    ("recurrence", "ours"): {
        "youtube": ["youtube_highlights-per_domain-recurrence_ours"],
        "random80": ["tvsum-random80-recurrence_ours"],
        "y2t": ["youtube_to_tvsum-recurrence_ours-seed42"],
        "t2y": ["tvsum_to_youtube-recurrence_ours-seed42"],
    },
    ("recurrence", "ours, direct (no network)"): {
        "youtube": ["youtube_highlights-per_domain-recurrence_ours_direct"],
        "random80": ["tvsum-random80-recurrence_ours_direct"],
        "y2t": ["youtube_to_tvsum-recurrence_ours_direct"],
        "t2y": ["tvsum_to_youtube-recurrence_ours_direct"],
    },
    ("rasl", "paper"): {
        "youtube": "not run: RASL was benchmarked cross-dataset; its YouTube numbers are the TVSum->YouTube column",
        "random80": [f"tvsum-rasl_random80_paper-seed{s}" for s in (42, 123, 456, 777, 999)],
        "y2t": ["youtube_to_tvsum-rasl"],
        "t2y": ["tvsum_to_youtube-rasl"],
    },
    ("rasl", "ours"): {
        "youtube": "not run: see the TVSum->YouTube column",
        "random80": [f"tvsum-rasl_random80_zsigmoid_shared_pos_prior1-seed{s}" for s in (42, 123, 456, 777, 999)],
        "y2t": [f"youtube_to_tvsum-rasl_zsigmoid_shared_pos_prior1-seed{s}" for s in (42, 123, 456, 777, 999)],
        "t2y": [f"tvsum_to_youtube-rasl_zsigmoid_shared_pos_prior1-seed{s}" for s in (42, 123, 456, 777, 999)],
    },
    ("rasl", "ours' network alone (prior_weight 0)"): {
        "youtube": "not run",
        "random80": [f"tvsum-rasl_random80_zsigmoid_shared_pos-seed{s}" for s in (42, 123, 456, 777, 999)],
        "y2t": [f"youtube_to_tvsum-rasl_zsigmoid_shared_pos-seed{s}" for s in (42, 123, 456, 777, 999)],
        "t2y": [f"tvsum_to_youtube-rasl_zsigmoid_shared_pos-seed{s}" for s in (42, 123, 456, 777, 999)],
    },
    ("reference", "feature_norm"): {
        "youtube": ["youtube_highlights-per_domain-feature_norm"],
        "random80": ["tvsum-random80-feature_norm"],
        "y2t": ["youtube_to_tvsum-feature_norm"],
        # training-free: the same scores on the same YouTube test videos as the per_domain protocol
        "t2y": ["youtube_highlights-per_domain-feature_norm"],
    },
    ("reference", "random"): {
        "youtube": ["youtube_highlights-per_domain-random"],
        "random80": ["tvsum-random80-random_reference_for_recurrence"],
        "y2t": ["youtube_to_tvsum-random_reference_for_rasl"],
        "t2y": ["tvsum_to_youtube-random_reference_for_rasl"],
    },
}


@dataclass(frozen=True)
class SeedScores:
    """Per seed: the column's value (x100), per domain where the protocol has them, and collapsed fits."""

    value: dict[int, float]
    domains: dict[str, dict[int, float]]
    collapsed_fits: int
    fits: int


def domain_value(groups: Mapping[str, Mapping[str, float]], domain: str) -> float:
    """A domain's mAP: its own group (per_domain protocol) or the `map_<domain>` key of the single group."""
    if domain in groups:
        return groups[domain]["map"]
    (only,) = groups.values()
    return only[f"map_{domain}"]


def fit_collapsed(groups: Mapping[str, Mapping[str, float]], reports: Mapping[str, Mapping]) -> list[bool]:
    """One flag per fit (group): near-constant on more than half of its training videos (fit report, when
    recorded) or of its test videos (`collapsed_fraction`)."""
    flags = []
    for name, metrics in groups.items():
        train = reports.get(name, {}).get("near_constant_on_train", 0.0)
        flags.append(max(train, metrics.get("collapsed_fraction", 0.0)) > COLLAPSED)
    return flags


def read_cell(results: Path, folders: Sequence[str], column: Column) -> SeedScores | None:
    """The seeds of the folders that exist (None when none does; the cell text shows how many seeds were read)."""
    value: dict[int, float] = {}
    domains: dict[str, dict[int, float]] = {d: {} for d in DOMAINS}
    collapsed = fits = 0
    for folder in folders:
        path = results / folder / "result.json"
        if not path.is_file():
            continue
        result = json.loads(path.read_text())
        for seed_key, groups in result["per_seed"].items():
            seed = int(seed_key)
            if seed in value:
                raise ValueError(f"{folder}: seed {seed} already read from another folder of the cell")
            value[seed] = 100 * float(np.mean([g[column.metric] for g in groups.values()]))
            if column.per_domain:
                for d in DOMAINS:
                    domains[d][seed] = 100 * domain_value(groups, d)
            flags = fit_collapsed(groups, (result.get("fit_reports") or {}).get(seed_key, {}))
            collapsed, fits = collapsed + sum(flags), fits + len(flags)
    return SeedScores(value, domains if column.per_domain else {}, collapsed, fits) if value else None


def mean_std(values: Mapping[int, float]) -> str:
    v = np.array(list(values.values()))
    return f"{v.mean():.2f} +- {v.std():.2f} ({len(v)} seeds)" if len(v) > 1 else f"{v[0]:.2f} (1 seed)"


def cell_text(scores: SeedScores | None, folders: Sequence[str] | str) -> str:
    if isinstance(folders, str):
        return f"- ({folders})"
    if scores is None:
        return "- (not run: no result folder)"
    text = mean_std(scores.value)
    if scores.domains:
        text += "; " + ", ".join(f"{d[:3]} {np.mean(list(v.values())):.2f}" for d, v in scores.domains.items())
    where = folders[0] if len(folders) == 1 else f"{folders[0].rsplit('-seed', 1)[0]}-seed*"
    return f"{text}; collapsed {scores.collapsed_fits}/{scores.fits}; `{where}`"


def all_scores(results: Path) -> dict[tuple[str, str], dict[str, SeedScores | None]]:
    return {row: {c: None if isinstance(f, str) else read_cell(results, f, COLUMNS[c]) for c, f in cells.items()}
            for row, cells in CELLS.items()}


def numbers_table(scores: Mapping[tuple[str, str], Mapping[str, SeedScores | None]]) -> list[str]:
    lines = ["| method | row | " + " | ".join(c.header for c in COLUMNS.values()) + " |",
             "|---|---|" + "---|" * len(COLUMNS)]
    for (method, row), cells in scores.items():
        texts = [cell_text(cells[c], CELLS[(method, row)][c]) for c in COLUMNS]
        lines.append(f"| {method} | {row} | " + " | ".join(texts) + " |")
    return lines


def margins(ours: Mapping[int, float], reference: Mapping[int, float], paired: bool) -> tuple[float, float, int]:
    """(mean, worst seed) of ours - reference, and the number of seeds compared; paired by seed or against the
    reference's mean."""
    if paired:
        diffs = [ours[s] - reference[s] for s in ours if s in reference]
    else:
        diffs = [v - float(np.mean(list(reference.values()))) for v in ours.values()]
    return float(np.mean(diffs)), float(np.min(diffs)), len(diffs)


def done_when_table(scores: Mapping[tuple[str, str], Mapping[str, SeedScores | None]]) -> list[str]:
    lines = ["| method | protocol | domain | ours - random: mean / worst seed | ours - feature_norm: mean / worst seed"
             " | seeds | collapsed fits |", "|---|---|---|---|---|---|---|"]
    for method in ("recurrence", "rasl"):
        for key, column in COLUMNS.items():
            ours = scores[(method, "ours")][key]
            rand, floor = scores[("reference", "random")][key], scores[("reference", "feature_norm")][key]
            if ours is None or rand is None or floor is None:
                continue
            parts = [("all", ours.value, rand.value, floor.value)]
            parts += [(d, ours.domains[d], rand.domains[d], floor.domains[d]) for d in ours.domains]
            for domain, o, r, f in parts:
                mr, wr, n = margins(o, r, column.paired_by_seed)
                mf, wf, _ = margins(o, f, column.paired_by_seed)
                lines.append(f"| {method} | {column.header} | {domain} | {mr:+.2f} / {wr:+.2f} | {mf:+.2f} / {wf:+.2f}"
                             f" | {n} | {ours.collapsed_fits}/{ours.fits} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default="bench/results", help="the folder holding the result folders")
    args = parser.parse_args(argv)
    scores = all_scores(Path(args.results))
    print("\n".join(["## Numbers", "", *numbers_table(scores), "", "## Done-when check", "", *done_when_table(scores)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
