"""results.json's targets and memory verdicts, and results.md, for bench/speed.py."""

from __future__ import annotations

import math
from dataclasses import dataclass

MEMORY_FLAT_FACTOR = 1.25  # "flat": the longest input's peak RSS at most 1.25x the shortest's, stage by stage


@dataclass(frozen=True)
class RatioTarget:
    """`stage`'s wall time at most `limit` times the full decode of the same file."""

    name: str
    stage: str
    limit: float


RATIO_TARGETS = (
    RatioTarget("light path (loudness, clips and reel written)", "light", 2.0),
    RatioTarget("writing outputs alone (render: clips, reel, result files)", "render", 0.5),
    RatioTarget("1-fps visual path (feature_norm on mobilenet_v1_025, real weights)", "visual_1fps", 2.0),
)
STORE_HIT_S_PER_VIDEO_HOUR = 1.0


def targets(per_input: list[dict], gpu: str | None) -> list[dict]:
    rows = []
    for entry in per_input:
        stages = entry["stages"]
        for target in RATIO_TARGETS:
            row = stages.get(target.stage)
            if row is None:
                continue
            ratio = row["ratio_to_full_decode"]
            rows.append({"input": entry["input"], "target": target.name, "limit": f"<= {target.limit}x full decode",
                         "measured": f"{ratio}x ({row['wall_s']} s vs {row['paired_decode_s']} s)",
                         "status": _status(row, ratio <= target.limit, f"{ratio / target.limit:.1f}x over")})
        rows.extend(_store_hit_target(entry))
    rows.append({"input": "all", "target": "GPU default path", "limit": "<= 1.2x full decode",
                 "measured": "not measured" if gpu is None else f"GPU present ({gpu}) but no GPU stage is defined",
                 "status": "not measured: no GPU lent to this task" if gpu is None else "not measured"})
    return rows


def _store_hit_target(entry: dict) -> list[dict]:
    """Store hit minus writing the result files alone, each scaled to the input's median decode through its paired
    ratio (the two ran at different times, and a shared machine's load drifts); CPU seconds beside it."""
    stages = entry["stages"]
    hit, files = stages.get("store_hit"), stages.get("render_files")
    if hit is None or files is None:
        return []
    hours = entry["length_s"] / 3600
    floor_s = entry["decode_full"]["wall_s_median"]
    beyond_s = (hit["ratio_to_full_decode"] - files["ratio_to_full_decode"]) * floor_s
    allowed_s = STORE_HIT_S_PER_VIDEO_HOUR * hours
    return [{"input": entry["input"], "target": "re-scoring from the feature store (no decoding)",
             "limit": f"<= {STORE_HIT_S_PER_VIDEO_HOUR} s per video-hour ({allowed_s:.3f} s here) plus writing the "
                      "result files (render --no-clips --no-reel)",
             "measured": f"({hit['ratio_to_full_decode']} - {files['ratio_to_full_decode']}) x {floor_s} s decode = "
                         f"{beyond_s:.2f} s beyond writing ({beyond_s / hours:.1f} s per video-hour); CPU "
                         f"{hit['cpu_s']} s vs {files['cpu_s']} s",
             "status": _status(hit, beyond_s <= allowed_s, f"{beyond_s - allowed_s:.2f} s over")}]


def _status(row: dict, met: bool, gap: str) -> str:
    if row.get("exit_code", 0) != 0:
        return f"failed (exit {row['exit_code']})"
    return "met" if met else f"gap: {gap}"


def memory(per_input: list[dict]) -> dict:
    """Per stage: peak RSS (largest process) per input, and whether it stays flat from the shortest input to the
    longest (only when two or more inputs of different lengths ran)."""
    by_length = sorted(per_input, key=lambda e: e["length_s"])
    result = {}
    names = [name for e in by_length for name in e["stages"]]
    for name in dict.fromkeys(names):
        peaks = {e["input"]: e["stages"][name]["peak_rss_mb"] for e in by_length if name in e["stages"]}
        row = {"peak_rss_mb": peaks}
        values = list(peaks.values())
        if len(values) >= 2 and by_length[0]["length_s"] != by_length[-1]["length_s"]:
            growth = values[-1] / values[0]
            row.update(growth=round(growth, 3), flat=growth <= MEMORY_FLAT_FACTOR)
        result[name] = row
    return result


def is_positive_finite(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def markdown(doc: dict, stage_notes: dict[str, str]) -> str:
    m = doc["machine"]
    lines = ["# End-to-end speed and memory against the decode floor", "",
             f"Command: `{doc['command']}`  ", f"Run: {doc['started_utc']} to {doc['finished_utc']}, "
             f"{doc['rounds']} round(s); every figure is one whole process.", "",
             "## Machine", "", f"- CPU: {m['cpu']} ({m['cores']} logical cores); {m['platform']}",
             f"- load average (1, 5, 15 min) at start {m['load_avg_start']}, at end {m['load_avg_end']}",
             f"- GPU: {m['gpu']}", f"- {m['ffmpeg']}; Python {m['python']}"]
    for other in doc.get("merged_from", []):
        om = other["machine"] or {}
        lines.append(f"- merged from `{other['file']}`: `{other['command']}`, {other['started_utc']} to "
                     f"{other['finished_utc']}, load average at start {om.get('load_avg_start')}, at end "
                     f"{om.get('load_avg_end')}")
    lines += ["",
             "## Method", "",
             "Each stage runs as its own process between two full decodes of the same file "
             "(`ffmpeg -v error -nostdin -i FILE -f null -`); its ratio is its wall time over the mean of the two "
             "decodes beside it (x decode CPU: its CPU seconds, children included, over the decodes' median CPU "
             "seconds, which a loaded machine disturbs less). Peak RSS is the kernel's figure for the largest single "
             "process of the stage's tree "
             "(`os.wait4`); tree RSS is the whole live tree at its largest (polled every 0.1 s).", ""]
    lines += [f"- `{name}`: {note}" for name, note in stage_notes.items()]
    lines += ["", "## Targets", "", "| input | target | limit | measured | status |", "|---|---|---|---|---|"]
    lines += [f"| {t['input']} | {t['target']} | {t['limit']} | {t['measured']} | {t['status']} |"
              for t in doc["targets"]]
    for entry in doc["per_input"]:
        d = entry["decode_full"]
        partial = " - partial: the run stopped before its remaining stages" if entry.get("partial") else ""
        lines += ["", f"## {entry['input']} ({entry['bytes'] / 2**20:.1f} MiB){partial}", "",
                  f"Full decode: median {d['wall_s_median']} s (min {d['wall_s_min']}, max {d['wall_s_max']}, "
                  f"{d['runs']} runs; CPU {d['cpu_s_median']} s; peak {d['peak_rss_mb']} MB).", "",
                  "| stage | wall s | x full decode | CPU s | x decode CPU | peak RSS MB | tree RSS MB | exit |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, s in entry["stages"].items():
            cpu_ratio = round(s["cpu_s"] / d["cpu_s_median"], 2) if d["cpu_s_median"] > 0 else "-"
            lines.append(f"| {name} | {s['wall_s']} | {s['ratio_to_full_decode']} | {s['cpu_s']} | {cpu_ratio} "
                         f"| {s['peak_rss_mb']} | {s['peak_tree_rss_mb']} | {s['exit_code']} |")
    lines += _memory_md(doc["memory"]) + _extractors_md(doc.get("extractors")) + _imports_md(doc.get("imports"))
    if doc.get("notes"):
        lines += ["", doc["notes"].strip()]
    return "\n".join(lines) + "\n"


def _memory_md(mem: dict) -> list[str]:
    inputs = list(dict.fromkeys(i for row in mem.values() for i in row["peak_rss_mb"]))
    lines = ["", "## Peak memory by input length (largest process, MB)", "",
             "| stage | " + " | ".join(inputs) + f" | longest / shortest (flat: <= {MEMORY_FLAT_FACTOR}) |",
             "|---" * (len(inputs) + 2) + "|"]
    for name, row in mem.items():
        cells = [str(row["peak_rss_mb"].get(i, "-")) for i in inputs]
        verdict = f"{row['growth']} ({'flat' if row['flat'] else 'grows'})" if "growth" in row else "-"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {verdict} |")
    return lines


def _extractors_md(ex: dict | None) -> list[str]:
    if not ex:
        return []
    lines = ["", f"## Feature extraction per extractor, in-process ({ex['input']})", "",
             "`pipeline.extract.extract_features` with an empty store, timed inside the process (imports excluded; "
             "loading the weights, decoding and the store write included); ratio to the paired full decode.", "",
             "| extractor | weights | device | extract s | x full decode | video s / s | peak RSS MB | output |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in ex["rows"].items():
        if "error" in r:
            lines.append(f"| {name} | - | - | failed: {r['error'][:120]} | | | | |")
            continue
        lines.append(f"| {name} | {r['weights']} | {r['device']} | {r['extract_s']} | {r['ratio_to_full_decode']} | "
                     f"{r['video_s_per_s']} | {r['peak_rss_mb']} | {r['shape'][0]}x{r['shape'][1]} |")
    return lines


def _imports_md(imports: dict | None) -> list[str]:
    if not imports:
        return []
    lines = ["", "## Start-up: imports of the light path (`python -X importtime -m avhighlights ...`)", ""]
    for label, r in imports.items():
        lines += [f"`{label}`: {r['wall_s']} s wall, {r['modules_imported']} modules, {r['total_import_s']} s "
                  f"importing ({r['avhighlights_self_s']} s in avhighlights' own modules). Top packages by own "
                  "import time:", "", "| package | s | first imported through |", "|---|---|---|"]
        for p in r["top_packages"]:
            chain = " > ".join(p["avhighlights_chain"] + p["via_packages"]) or "(a function-level import)"
            lines.append(f"| {p['package']} | {p['self_s']} | {chain} |")
        lines.append("")
    return lines
