"""Where the light path's fixed start-up cost goes: `python -X importtime` over a whole `score --method loudness`
run (lazy imports inside the run count too), summed per top-level package, with the chain of imports through
which each heavy package first arrives (nearest avhighlights module first)."""

from __future__ import annotations

import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from speed_measure import measure
from speed_stages import stage_env

LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)\s*$")
TOP_N = 10


@dataclass(frozen=True)
class Imported:
    name: str
    self_us: int
    cumulative_us: int
    depth: int


def parse_importtime(stderr: str) -> list[Imported]:
    """The `-X importtime` lines of `stderr`, in the order printed (a module after the modules it imported)."""
    rows = []
    for line in stderr.splitlines():
        match = LINE.match(line)
        if match:
            self_us, cumulative_us, indent, name = match.groups()
            rows.append(Imported(name, int(self_us), int(cumulative_us), (len(indent) - 1) // 2))
    return rows


def parents(rows: list[Imported]) -> list[int | None]:
    """Index of each row's importer: the next row printed at a smaller depth (None for top-level imports)."""
    result: list[int | None] = [None] * len(rows)
    waiting: list[int] = []  # rows whose importer has not been printed yet, deepest last
    for i, row in enumerate(rows):
        while waiting and rows[waiting[-1]].depth > row.depth:
            result[waiting.pop()] = i
        waiting.append(i)
    return result


def package_costs(rows: list[Imported]) -> dict[str, int]:
    """Summed self time (us) per top-level package."""
    costs: dict[str, int] = {}
    for row in rows:
        top = row.name.split(".")[0]
        costs[top] = costs.get(top, 0) + row.self_us
    return dict(sorted(costs.items(), key=lambda kv: -kv[1]))


def first_import(rows: list[Imported], up: list[int | None], package: str) -> dict:
    """How `package` first arrives: the avhighlights modules above it (outermost first), then the packages between
    the nearest of them and `package`."""
    for i, row in enumerate(rows):
        if row.name != package:
            continue  # a package's own module is printed once, when first imported
        own, via, j = [], [], up[i]
        while j is not None:
            top = rows[j].name.split(".")[0]
            if top == "avhighlights":
                own.append(rows[j].name)
            elif not own and top not in via and top != package:
                via.append(top)
            j = up[j]
        return {"avhighlights_chain": own[::-1], "via_packages": via[::-1]}
    return {"avhighlights_chain": [], "via_packages": []}


def analyse(stderr: str) -> dict:
    rows = parse_importtime(stderr)
    up = parents(rows)
    costs = package_costs(rows)
    heavy = [p for p in costs if p != "avhighlights"][:TOP_N]
    return {"modules_imported": len(rows), "total_import_s": round(sum(r.self_us for r in rows) / 1e6, 3),
            "avhighlights_self_s": round(costs.get("avhighlights", 0) / 1e6, 3),
            "top_packages": [{"package": p, "self_s": round(costs[p] / 1e6, 3), **first_import(rows, up, p)}
                             for p in heavy]}


def light_path_imports(video: Path, timeout_s: float) -> dict:
    """Import costs of `score VIDEO --method loudness --no-clips --no-reel` (no store) and of `--version`."""
    result = {}
    with tempfile.TemporaryDirectory() as out:
        commands = {"score_loudness": ["score", str(video), "--method", "loudness", "--no-cache", "--no-clips",
                                       "--no-reel", "--out", out, "--progress", "none"],
                    "version": ["--version"]}
        for label, args in commands.items():
            m = measure([sys.executable, "-X", "importtime", "-m", "avhighlights", *args], env=stage_env(),
                        timeout_s=timeout_s, keep_stderr_bytes=None)
            result[label] = {"wall_s": round(m.wall_s, 3), "exit_code": m.exit_code, **analyse(m.stderr_tail)}
    return result
