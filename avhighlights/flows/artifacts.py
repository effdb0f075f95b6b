"""Prefect artifacts for the flows: a per-run report (score plot + table of clips), a progress bar
during extraction and the batch summary table."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

MAX_INLINE_PNG_BYTES = 512 * 1024  # larger plots are linked by path instead of embedded


def artifact_key(text: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    cleaned = "".join(c if c.isalnum() else "-" for c in text.lower())
    return "-".join(part for part in cleaned.split("-") if part)[:100] or "run"


class ExtractionProgress:
    """A progress artifact advanced once per finished extractor."""

    def __init__(self, total: int, video: str):
        self.total, self.done = max(total, 1), 0
        self.id: UUID = create_progress_artifact(0.0, description=f"feature extraction: {Path(video).name}")

    def advance(self, name: str, hit: bool) -> None:
        self.done += 1
        note = f"{name} {'cached' if hit else 'computed'} ({self.done}/{self.total})"
        update_progress_artifact(self.id, 100.0 * self.done / self.total, description=note)


def _plot_markdown(plot: Path | None) -> str:
    if plot is None or not plot.is_file():
        return "_no score plot_"
    if plot.stat().st_size > MAX_INLINE_PNG_BYTES:
        return f"score plot: `{plot}`"
    data = base64.b64encode(plot.read_bytes()).decode("ascii")
    return f"![scores](data:image/png;base64,{data})\n\nscore plot: `{plot}`"


def clips_table(clips: Sequence[dict[str, Any]]) -> str:
    """A markdown table of clips (rank, start, end, duration, score, file)."""
    lines = ["| rank | start (s) | end (s) | duration (s) | score | file |", "|---:|---:|---:|---:|---:|---|"]
    for clip in sorted(clips, key=lambda c: c["start_s"]):
        lines.append(f"| {clip['rank']} | {clip['start_s']:.2f} | {clip['end_s']:.2f} | "
                     f"{clip['end_s'] - clip['start_s']:.2f} | {clip['score']:.4f} | `{clip.get('path') or ''}` |")
    return "\n".join(lines)


def run_report_markdown(summary: dict[str, Any], plot: Path | None) -> str:
    """The per-run markdown report: header, cache use, score plot and the table of clips."""
    cache = ", ".join(f"{name}: {'hit' if hit else 'miss'}" for name, hit in summary["cache_hits"].items())
    return "\n\n".join([
        f"# Highlights: {Path(summary['video']).name}",
        f"method **{summary['method']}**, {summary['n_clips']} clips, {summary['selected_s']:.1f} s selected "
        f"of {summary['duration_s']:.1f} s; results: `{summary['results_json']}`",
        f"features: {cache or 'none'}",
        _plot_markdown(plot),
        clips_table(summary["clips"]),
    ])


def publish_run_report(summary: dict[str, Any], plot: Path | None) -> UUID:
    key = artifact_key(f"highlights-{Path(summary['video']).stem}")
    return create_markdown_artifact(run_report_markdown(summary, plot), key=key,
                                    description=f"highlights of {summary['video']}")


def publish_batch_table(rows: list[dict[str, Any]], name: str) -> UUID:
    """The reprocess summary: one row per video (status, seconds, metrics)."""
    return create_table_artifact(rows, key=artifact_key(f"reprocess-{name}"),
                                 description=f"reprocess-dataset summary for {name}")
