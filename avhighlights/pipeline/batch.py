"""`avhighlights score` over many videos: inputs from files, folders and manifests, and a batch that goes on
when one video fails.

- Inputs: video files as given, folders scanned recursively for the video suffixes `fit` uses
  (`pipeline.fit.find_videos`), and manifests: a text file with one path per line (`#` starts a comment line,
  blank lines are skipped, relative paths are resolved against the manifest's folder; an entry may also be a
  folder), or a `.json` list of paths (or `{"videos": [...]}`), as `reprocess` reads them.
- One video: exactly as before, its error (if any) ends the run with its own exit code and nothing is written.
- Several videos: a video that fails (bad media, a feature-store or rendering problem, anything) becomes a
  `failed` row and the others are still written; a problem every video shares (unknown method, bad
  checkpoint, bad selection option) still stops the run at once. `OUT/batch.json` lists every video with its
  status; the exit code is 0 when all succeeded, 9 (EXIT_PARTIAL_FAILURE) when some failed, and when all
  failed the code they share (3 when all were bad media), else 1.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from avhighlights.core.atomic import write_json
from avhighlights.core.errors import AVHighlightsError, ConfigError
from avhighlights.core.errors import batch_exit_code as exit_code_of_batch
from avhighlights.core.progress import ProgressFn
from avhighlights.core.types import VideoInfo
from avhighlights.pipeline.fit import find_videos
from avhighlights.pipeline.index_html import write_index
from avhighlights.pipeline.output_dir import prepare_output_dir, writing_to
from avhighlights.pipeline.probe import probe
from avhighlights.pipeline.progress import for_video, null_progress, report_count
from avhighlights.pipeline.render_checks import remember_probed
from avhighlights.pipeline.run import RenderOptions, RunResult, _score_and_write, open_store, video_out_dir
from avhighlights.pipeline.score import ScorerSpec, prepare_scorer
from avhighlights.pipeline.select import SelectionConfig

BATCH_NAME = "batch.json"
BATCH_SCHEMA = "avhighlights/batch/1"


@dataclass
class BatchRow:
    """One video of a batch: "ok" with its outputs, or "failed" with the reason and the error's exit code."""

    video: str
    status: str
    seconds: float = 0.0
    out_dir: str | None = None
    clips: int = 0
    selected_s: float = 0.0
    error: str | None = None
    exit_code: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass
class BatchReport:
    rows: list[BatchRow]
    results: list[RunResult]
    summary_json: Path | None  # OUT/batch.json (None for a single video)

    @property
    def exit_code(self) -> int:
        return batch_exit_code(self.rows)

    @property
    def failed(self) -> list[BatchRow]:
        return [r for r in self.rows if r.status == "failed"]


RowCallback = Callable[[int, int, BatchRow, "float | None"], None]  # (index from 1, total, row, ETA s or None)


def read_manifest(path: str | Path) -> list[Path]:
    """The entries of a manifest, relative ones resolved against its folder (module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: manifest does not exist or is not a file")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        data = json.loads(text)
        entries = data.get("videos") if isinstance(data, dict) else data
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise ConfigError(f"{path}: a JSON manifest is a list of paths or {{\"videos\": [...]}}")
    else:
        lines = (line.strip() for line in text.splitlines())
        entries = [line for line in lines if line and not line.startswith("#")]
    return [path.parent / Path(entry).expanduser() for entry in entries]


def collect_videos(paths: Sequence[str | Path], manifests: Sequence[str | Path] = ()) -> list[Path]:
    """Videos of `paths` (files or folders) then of each manifest, in order, duplicates dropped."""
    if not paths and not manifests:
        raise ConfigError("give at least one VIDEO or FOLDER, or --manifest FILE")
    entries = [*map(Path, paths), *(p for m in manifests for p in read_manifest(m))]
    return find_videos(entries)


def batch_exit_code(rows: Sequence[BatchRow]) -> int:
    """`errors.batch_exit_code` over the rows of a `score` batch."""
    return exit_code_of_batch(len(rows), [r.exit_code for r in rows if r.status == "failed"])


def progress_line(index: int, total: int, row: BatchRow, eta_s: float | None) -> str:
    """`[3/12] name.mp4 ok 4.2 s, ETA 38 s` (`ETA ?` before any video was scored)."""
    eta = "?" if eta_s is None else f"{eta_s:.0f} s"
    return f"[{index}/{total}] {Path(row.video).name} {row.status} {row.seconds:.1f} s, ETA {eta}"


def score_batch(videos: Sequence[str | Path], spec: ScorerSpec, out_dir: str | Path, *,
                selection: SelectionConfig | None = None, render: RenderOptions | None = None,
                store: str | None = "default", progress: ProgressFn | None = None,
                on_row: RowCallback | None = None) -> BatchReport:
    """Score every video into `out_dir/<stem>/`; see the module docstring for failures and the summary."""
    progress, single = progress or null_progress, len(videos) == 1
    infos: dict[int, VideoInfo] = {}
    rows: dict[int, BatchRow] = {}
    for i, video in enumerate(videos):
        report_count(progress, "probe", i, len(videos), "files")
        try:
            with for_video(progress, video):
                infos[i] = remember_probed(probe(video))  # render need not hash it again
        except AVHighlightsError as exc:
            if single:
                raise
            rows[i] = _failed(video, exc, 0.0)
    report_count(progress, "probe", len(videos), len(videos), "files")
    scorer = prepare_scorer(spec, list(infos.values()), store, progress) if infos else None
    feature_store, out_root, taken = open_store(store), prepare_output_dir(out_dir), set()
    results: list[RunResult] = []
    t_start, n_scored = time.monotonic(), 0
    for i, video in enumerate(videos):
        if i in infos:
            t0 = time.monotonic()
            try:
                result = _score_and_write(infos[i], scorer, feature_store, video_out_dir(out_root, infos[i], taken),
                                          selection or SelectionConfig(), render or RenderOptions(), progress)
            except Exception as exc:  # one video's failure, whatever it is, must not stop the batch
                if single:
                    raise
                rows[i] = _failed(video, exc, time.monotonic() - t0)
            else:
                if scorer.fit is not None:  # which on-the-fly fit scored the video, and why
                    with writing_to(result.out_dir):
                        write_json(result.out_dir / "fit.json", scorer.fit.to_json())
                results.append(result)
                rows[i] = BatchRow(str(video), "ok", round(time.monotonic() - t0, 3), str(result.out_dir),
                                   result.n_clips, round(result.selected_s, 3), warnings=list(result.warnings))
            n_scored += 1
        if on_row is not None:
            left = sum(1 for j in infos if j > i)  # videos still to score; the mean time so far per video
            eta_s = (time.monotonic() - t_start) / n_scored * left if n_scored else (None if left else 0.0)
            on_row(i + 1, len(videos), rows[i], eta_s)
    ordered = [rows[i] for i in range(len(videos))]
    summary = None if single else _write_summary(out_root, ordered)
    write_index(out_root)  # OUT/index.html over every OUT/*/highlights.json
    return BatchReport(ordered, results, summary)


def _failed(video: str | Path, exc: Exception, seconds: float) -> BatchRow:
    reason = getattr(exc, "reason", None) or str(exc)
    if not isinstance(exc, AVHighlightsError):
        reason = f"{type(exc).__name__}: {reason}"
    code = exc.exit_code if isinstance(exc, AVHighlightsError) else 1
    return BatchRow(str(video), "failed", round(seconds, 3), error=reason, exit_code=code)


def _write_summary(out_root: Path, rows: list[BatchRow]) -> Path:
    ok = sum(r.status == "ok" for r in rows)
    return write_json(out_root / BATCH_NAME, {
        "schema": BATCH_SCHEMA, "n_videos": len(rows), "ok": ok, "failed": len(rows) - ok,
        "exit_code": batch_exit_code(rows), "videos": [asdict(r) for r in rows],
    })
