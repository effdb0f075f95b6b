"""`avhighlights bench-merge`: join bench results that ran the same method, dataset, protocol and config
with disjoint seeds (one seed per machine or process, `bench --seed-values`) into one result, its summary
recomputed over all seeds exactly as a single `bench --seeds N` run would compute it."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avhighlights.core.errors import ConfigError, DatasetError
from avhighlights.evaluation.bench import BenchResult, write_result
from avhighlights.evaluation.protocols import PROTOCOLS
from avhighlights.evaluation.report import summarise

# What must be equal for two parts to be one experiment (data_root may differ between machines).
IDENTITY_KEYS = ("dataset", "protocol", "method", "domains", "method_overrides", "method_config", "feature_sources")


def load_part(path: str | Path) -> dict[str, Any]:
    """A bench result.json, given as the file or the folder holding it."""
    path = Path(path)
    file = path / "result.json" if path.is_dir() else path
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError as exc:
        raise DatasetError(f"{file}: no bench result here") from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{file}: not valid JSON ({exc.msg}, line {exc.lineno})") from exc
    if not {"config", "seeds", "per_seed"} <= set(data):
        raise DatasetError(f"{file}: not a bench result.json (needs config, seeds and per_seed)")
    data["_path"] = str(file)
    return data


def check_parts(parts: Sequence[dict[str, Any]]) -> None:
    """Raise ConfigError unless every part is the same experiment and no seed appears twice."""
    if len(parts) < 2:
        raise ConfigError("bench-merge needs at least two results")
    first = parts[0]
    for part in parts[1:]:
        for key in IDENTITY_KEYS:
            if part["config"].get(key) != first["config"].get(key):
                raise ConfigError(f"{part['_path']}: {key} {part['config'].get(key)!r} differs from "
                                  f"{first['_path']}'s {first['config'].get(key)!r}")
    seen: dict[int, str] = {}
    for part in parts:
        for seed in part["seeds"]:
            if seed in seen:
                raise ConfigError(f"seed {seed} is in both {seen[seed]} and {part['_path']}")
            seen[seed] = part["_path"]


def merge_parts(parts: Sequence[dict[str, Any]]) -> tuple[BenchResult, Any]:
    """The merged result (seeds in the order of the parts) and its protocol."""
    check_parts(parts)
    first = parts[0]
    proto = PROTOCOLS.get(first["config"]["protocol"])()
    per_seed = {int(s): runs for p in parts for s, runs in p["per_seed"].items()}
    seeds = [int(s) for p in parts for s in p["seeds"]]
    summary = summarise(per_seed, list(proto.metrics), proto.std_over)
    part_info = [{"path": p["_path"], "seeds": p["seeds"], "wall_s": p.get("wall_s"), "machine": p.get("machine")}
                 for p in parts]
    result = BenchResult(
        config=first["config"], seeds=seeds, notes=first.get("notes", proto.notes),
        splits={s: v for p in parts for s, v in p.get("splits", {}).items()}, per_seed=per_seed, summary=summary,
        wall_s=round(sum(float(p.get("wall_s") or 0.0) for p in parts), 3), machine=first.get("machine", {}),
        extra={**first.get("extra", {}), "merged_from": part_info},
        fit_reports={s: v for p in parts for s, v in p.get("fit_reports", {}).items()})
    return result, proto


def merge_results(paths: Sequence[str | Path], out_dir: str | Path) -> BenchResult:
    """Merge the bench results at `paths` and write result.json and results.md into `out_dir`."""
    result, proto = merge_parts([load_part(p) for p in paths])
    return write_result(result, proto, Path(out_dir))


def merge_main(args: argparse.Namespace) -> int:
    result = merge_results(args.parts, args.out)
    print(result.markdown_path.read_text())
    print(f"wrote {result.json_path} and {result.markdown_path}")
    return 0
