"""Leave-one-domain-out (LODO) for the zoo's general models: for each YouTube Highlights domain d and seed, train
`--method` on the `general` dataset without d (TVSum + the other three domains' training material; the validation
part that picks the epoch is held out from that material), then test on d's UMT test list and on ALL of d's videos
(none was seen in training), beside `feature_norm` (L2 norm of the visual feature) and `random` on the same videos.

One JSON part per (method, sources, domain, seed) under OUT/parts/ (a finished part is skipped, so the run resumes
and can be split over processes); `--report` joins the parts into OUT/lodo.json and OUT/lodo.md.

    python3 bench/zoo_lodo.py --data-root ../shared/data --method joint_va --domains dog parkour --seeds 42 123
    python3 bench/zoo_lodo.py --data-root ../shared/data --report
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avhighlights.core.atomic import write_json, write_text
from avhighlights.core.overrides import parse_overrides, parse_pairs
from avhighlights.evaluation.bench import load_method_modules, method_dims, open_dataset, predict_all
from avhighlights.evaluation.bench_checkpoints import load_for_dataset
from avhighlights.evaluation.protocols import YouTubePerDomain
from avhighlights.evaluation.train import train_checkpoint
from avhighlights.models.base import METHODS, collapsed_fraction, create_method

DOMAINS = ("dog", "gymnastics", "parkour", "skating")
DEFAULT_OUT = Path("bench/results/zoo_lodo")
VIDEO_SETS = ("test", "all")


def variant_name(method: str, sources: Mapping[str, str], overrides: Mapping[str, Any] | None = None) -> str:
    """'joint_va', or e.g. 'joint_va+visual=umt_i3d_rgb+epochs=10': the sources, then the config overrides."""
    return (method + "".join(f"+{role}={name}" for role, name in sorted(sources.items()))
            + "".join(f"+{key}={json.dumps(value)}" for key, value in sorted((overrides or {}).items())))


def domain_videos(data_root: str | Path, domain: str, sources: Mapping[str, str]) -> tuple[Any, dict[str, list]]:
    """The YouTube dataset of `domain` and its samples: the UMT test list and every video with features."""
    ds = open_dataset("youtube_highlights", data_root, [domain], sources or None)
    [split] = ds.splits()
    return ds, {"test": ds.samples(split.test_ids), "all": ds.samples(ds.video_ids())}


def evaluate(method, ds, videos: Mapping[str, Sequence]) -> dict[str, dict[str, float]]:
    """YouTube mAP (per_domain protocol) and the near-constant fraction on each video set."""
    proto, out = YouTubePerDomain(), {}
    for name, samples in videos.items():
        preds = predict_all(method, samples, ds.label_meta_keys)
        out[name] = {**proto.evaluate(samples, preds), "collapsed_fraction": collapsed_fraction(preds),
                     "n_videos": len(samples)}
    return out


def reference(name: str, seed: int, ds, videos: Mapping[str, Sequence]) -> dict[str, dict[str, float]]:
    """A reference method (feature_norm, random) on the same videos; random is seeded by the run seed."""
    cls = METHODS.get(name)
    overrides = {"seed": seed} if name == "random" else {}
    return evaluate(create_method(name, method_dims(cls, videos["test"]), overrides), ds, videos)


def run_part(data_root: str, method: str, sources: Mapping[str, str], domain: str, seed: int, out: Path,
             work: Path, overrides: Mapping[str, Any] | None = None) -> Path:
    """Train without `domain`, evaluate on it, write the part (skipped when it exists)."""
    variant = variant_name(method, sources, overrides)
    part = out / "parts" / f"{variant}_{domain}_seed{seed}.json"
    if part.is_file():
        return part
    t0 = time.monotonic()
    ckpt = work / f"{variant}_lodo-{domain}_seed{seed}.safetensors"
    report = train_checkpoint(data_root, "general", method, ckpt, seed=seed, exclude_domains=[domain],
                              sources=dict(sources), dtype="float16", method_overrides=overrides)
    ds, videos = domain_videos(data_root, domain, sources)
    model, _ = load_for_dataset(ckpt, ds, videos["test"])
    card = report.card
    seen = set(card["train_ids"] + card["val_ids"]) & {s.video_id for s in videos["all"]}
    if seen or domain in card["domains"]:
        raise RuntimeError(f"LODO {domain}: the held-out domain reached training ({sorted(seen)[:5]}); no part written")
    result = {"method": method, "sources": dict(sources), "variant": variant,
              "overrides": dict(overrides or {}), "domain": domain,
              "seed": seed, "train_domains": card["domains"], "n_train": len(card["train_ids"]),
              "n_val": len(card["val_ids"]), "selected_epoch": card["recipe"]["selected_epoch"],
              "epochs": card["recipe"]["epochs"], "validation_metrics": card["validation_metrics"],
              "command": card["command"], "train_seconds": round(report.seconds, 1),
              "seen_test_videos": len(seen),
              "results": {method: evaluate(model, ds, videos),
                          "feature_norm": reference("feature_norm", seed, ds, videos),
                          "random": reference("random", seed, ds, videos)},
              "seconds": round(time.monotonic() - t0, 1), "torch_threads": torch.get_num_threads()}
    write_json(part, result)
    return part


def mean_std(values: Sequence[float], signed: bool = False) -> str:
    """'66.73 ± 1.20 (n=5)' in points: mean ± sample std (ddof 1) over seeds; one seed has no std."""
    v = np.asarray(values, dtype=np.float64) * 100
    if not len(v):
        return "–"
    mean = f"{v.mean():+.2f}" if signed else f"{v.mean():.2f}"
    return f"{mean} ± {v.std(ddof=1):.2f} (n={len(v)})" if len(v) > 1 else f"{mean} (n=1)"


def summarise(parts: Sequence[dict]) -> dict[str, Any]:
    """variant -> domain -> method -> video set -> list of per-seed mAPs, and their means per seed over domains."""
    table: dict[str, Any] = {}
    for p in sorted(parts, key=lambda p: (p["variant"], p["domain"], p["seed"])):
        for name, sets in p["results"].items():
            for vset in VIDEO_SETS:
                row = table.setdefault(p["variant"], {}).setdefault(p["domain"], {}).setdefault(name, {})
                row.setdefault(vset, {})[str(p["seed"])] = sets[vset]["map"]
    return table


def domain_means(table: Mapping[str, Any], variant: str, name: str, vset: str) -> list[float]:
    """Per seed present in every domain: the mean over the four domains."""
    rows = table[variant]
    return [float(np.mean([rows[d][name][vset][s] for d in DOMAINS])) for s in _all_domain_seeds(rows, name, vset)]


def paired(table: Mapping[str, Any], variant: str, vset: str, floor: str = "feature_norm") -> dict[str, Any]:
    """Per domain and for the mean of 4 domains: per seed, the model's mAP minus `floor`'s on the same videos (the
    same part), their mean and sample std, and how many seeds are above the floor."""
    rows = table[variant]
    model = _names(rows)[0]
    diffs = {d: {s: rows[d][model][vset][s] - rows[d][floor][vset][s]
                 for s in sorted(set(rows[d].get(model, {}).get(vset, {})) & set(rows[d].get(floor, {}).get(vset, {})),
                                 key=int)}
             for d in DOMAINS if d in rows}
    seeds = [s for s in _all_domain_seeds(rows, model, vset) if all(s in diffs[d] for d in DOMAINS)]
    if seeds:
        diffs["mean of 4 domains"] = {s: float(np.mean([diffs[d][s] for d in DOMAINS])) for s in seeds}
    return {key: {"per_seed": per_seed, "mean": float(np.mean(list(per_seed.values()))),
                  "std": float(np.std(list(per_seed.values()), ddof=1)) if len(per_seed) > 1 else None,
                  "seeds_above": sum(d > 0 for d in per_seed.values()), "n": len(per_seed)}
            for key, per_seed in diffs.items() if per_seed}


def _all_domain_seeds(rows: Mapping[str, Any], name: str, vset: str) -> list[str]:
    """The seeds present for `name` in every domain, in numeric order."""
    if not all(d in rows for d in DOMAINS):
        return []
    return sorted(set.intersection(*(set(rows[d].get(name, {}).get(vset, {})) for d in DOMAINS)), key=int)


def paired_lines(table: Mapping[str, Any], variant: str) -> list[str]:
    """The markdown of `paired` for both video sets."""
    model = _names(table[variant])[0]
    lines = [f"Paired: per seed, {model} minus feature_norm on the same videos (points; seeds in order).", "",
             "| held-out domain | videos | per seed | mean ± std | seeds above feature_norm |", "|---|---|---|---|---|"]
    for vset in VIDEO_SETS:
        for key, row in paired(table, variant, vset).items():
            seeds = ", ".join(f"{s}: {d * 100:+.2f}" for s, d in row["per_seed"].items())
            lines.append(f"| {key} | {vset} | {seeds} | {mean_std(list(row['per_seed'].values()), signed=True)} | "
                         f"{row['seeds_above']} of {row['n']} |")
    return lines


def markdown(table: Mapping[str, Any], parts: Sequence[dict]) -> str:
    lines = ["# Leave-one-domain-out on YouTube Highlights (zoo general models)", "",
             "Train on the `general` dataset without the held-out domain (TVSum + the other three YouTube domains; the "
             "epoch is picked on a validation part held out from that training material, never on the held-out "
             "domain), then YouTube mAP (AP-trap over all clips, mean over videos) on the held-out domain: its UMT "
             "test list (`test`) and all its videos with features (`all`, none seen in training). `feature_norm` = "
             "L2 norm of the visual feature the variant reads (no training: the same number for every seed); "
             "`random` is seeded by the run seed. Points; mean ± sample std (ddof 1) over seeds, n = seeds; the mean "
             "of 4 domains is taken per seed over the seeds present in all four domains.", ""]
    for variant, rows in table.items():
        lines += [f"## {variant}", "", "| held-out domain | videos | " + " | ".join(_names(rows)) + " |",
                  "|---|---|" + "---|" * len(_names(rows))]
        for domain in DOMAINS:
            if domain not in rows:
                continue
            for vset in VIDEO_SETS:
                cells = [mean_std(list(rows[domain].get(n, {}).get(vset, {}).values())) for n in _names(rows)]
                lines.append(f"| {domain} | {vset} | " + " | ".join(cells) + " |")
        for vset in VIDEO_SETS:
            cells = [mean_std(domain_means(table, variant, n, vset)) for n in _names(rows)]
            lines.append(f"| **mean of 4 domains** | {vset} | " + " | ".join(cells) + " |")
        lines += [""] + paired_lines(table, variant)
        mine = [p for p in parts if p["variant"] == variant]
        seconds = [p["train_seconds"] for p in mine]
        lines += ["", f"{len(mine)} runs; seeds per domain: "
                  + ", ".join(f"{d} {sorted(p['seed'] for p in mine if p['domain'] == d)}" for d in DOMAINS)
                  + f"; training {min(seconds):.0f}-{max(seconds):.0f} s per run ({mine[0]['torch_threads']} torch "
                  f"thread); epochs {mine[0]['epochs']}; videos per held-out domain (test / all): "
                  + ", ".join(f"{p['domain']} {p['results']['feature_norm']['test']['n_videos']} / "
                              f"{p['results']['feature_norm']['all']['n_videos']}" for p in _first_per_domain(mine))
                  + "; e.g. "
                  f"`{mine[0]['command']}`.", ""]
    return "\n".join(lines)


def _first_per_domain(parts: Sequence[dict]) -> list[dict]:
    return [next(p for p in parts if p["domain"] == d) for d in DOMAINS if any(p["domain"] == d for p in parts)]


def _names(rows: Mapping[str, Any]) -> list[str]:
    names = {n for d in rows.values() for n in d}
    return sorted(names - {"feature_norm", "random"}) + ["feature_norm", "random"]


def report(out: Path) -> dict[str, Any]:
    parts = [json.loads(p.read_text()) for p in sorted((out / "parts").glob("*.json"))]
    table = summarise(parts)
    means = {v: {n: {vset: domain_means(table, v, n, vset) for vset in VIDEO_SETS} for n in _names(rows)}
             for v, rows in table.items()}
    data = {"format": "avhighlights-zoo-lodo/1", "table": table, "mean_of_domains_per_seed": means,
            "paired_vs_feature_norm": {v: {vset: paired(table, v, vset) for vset in VIDEO_SETS} for v in table},
            "runs": [{k: p[k] for k in ("variant", "domain", "seed", "n_train", "n_val", "selected_epoch",
                                        "train_seconds", "seen_test_videos", "command")} for p in parts]}
    write_json(out / "lodo.json", data)
    write_text(out / "lodo.md", markdown(table, parts))
    return data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--method", default="joint_va")
    parser.add_argument("--source", dest="sources", action="append", default=[], metavar="ROLE=SOURCE")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="method config override, as in `avhighlights train` (e.g. epochs=10)")
    parser.add_argument("--domains", nargs="+", default=list(DOMAINS), choices=DOMAINS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 123, 456, 777, 999])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--work", type=Path, default=Path("/tmp/avh_zoo_lodo"), help="folder for the LODO checkpoints")
    parser.add_argument("--report", action="store_true", help="only join the parts into lodo.json / lodo.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if not args.report:
        load_method_modules()
        sources = parse_pairs(args.sources, "--source")
        for seed in args.seeds:  # seed-major: every domain gets a first seed before any gets a second
            for domain in args.domains:
                path = run_part(args.data_root, args.method, sources, domain, seed, args.out, args.work,
                                parse_overrides(args.overrides))
                print(f"{path}: done", file=sys.stderr, flush=True)
    report(args.out)
    print((args.out / "lodo.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
