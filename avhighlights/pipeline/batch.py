"""`avhighlights score` over many videos: inputs from files, folders and manifests, and a batch that goes on
when one video fails.

- Inputs: video files as given, folders scanned recursively for the video suffixes `fit` uses
  (`core.files.find_videos`), and manifests: a text file with one path per line (`#` starts a comment line,
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
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from avhighlights.core.atomic import write_json
from avhighlights.core.errors import AVHighlightsError, ConfigError
from avhighlights.core.errors import batch_exit_code as exit_code_of_batch
from avhighlights.core.files import find_videos
from avhighlights.core.progress import ProgressFn
from avhighlights.pipeline.run import BatchRow, RowCallback, RunResult, run_videos
from avhighlights.pipeline.run_config import RunConfig
from avhighlights.pipeline.scorer import Notify

BATCH_NAME = "batch.json"
BATCH_SCHEMA = "avhighlights/batch/1"


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


def read_manifest(path: str | Path, error: type[AVHighlightsError] = ConfigError) -> list[Path]:
    """The entries of a manifest, relative ones resolved against its folder (module docstring); a missing or
    malformed manifest raises `error` (`score`: ConfigError, exit 2; `reprocess`: DatasetError, exit 7)."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: manifest does not exist or is not a file")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        data = json.loads(text)
        entries = data.get("videos") if isinstance(data, dict) else data
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise error(f"{path}: a JSON manifest is a list of paths or {{\"videos\": [...]}}")
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


def score_batch(videos: Sequence[str | Path], config: RunConfig, out_dir: str | Path, *,
                progress: ProgressFn | None = None, notify: Notify | None = None,
                on_row: RowCallback | None = None) -> BatchReport:
    """Score every video into `out_dir/<stem>/` (`run.run_videos`); see the module docstring for failures and
    the summary."""
    single = len(videos) == 1
    outcome = run_videos(videos, config, out_dir, progress=progress, notify=notify, keep_going=not single,
                         on_row=on_row)
    summary = None if single else _write_summary(outcome.out_root, outcome.rows)
    return BatchReport(outcome.rows, outcome.results, summary)


def _write_summary(out_root: Path, rows: list[BatchRow]) -> Path:
    ok = sum(r.status == "ok" for r in rows)
    return write_json(out_root / BATCH_NAME, {
        "schema": BATCH_SCHEMA, "n_videos": len(rows), "ok": ok, "failed": len(rows) - ok,
        "exit_code": batch_exit_code(rows), "videos": [asdict(r) for r in rows],
    })
