"""Stage 6: write the clips, the reel and the result files of a highlights document.

Everything is produced in a staging folder inside `out_dir` and moved into place only when all of
it succeeded (media first, `highlights.json` last). On failure the staging folder is removed, so
nothing half-written remains and outputs of an earlier render stay intact. Clips that an earlier
render in the same folder wrote and the new document no longer lists are removed after success.
The input video is only read.

Clips: `clip_{rank:02d}_{start:08.2f}-{end:08.2f}.mp4`, re-encoded (libx264 veryfast crf 20 + AAC)
and frame accurate by default; `stream_copy=True` cuts without re-encoding, on keyframes (clips
may start up to one keyframe interval early), and says so in the report's notes. The reel
(`reel.mp4`) holds the clips in time order; re-encoded, it is cut straight from the source with one
trim/concat filter graph (exact frames, audio trimmed to the same spans, so no drift accumulates
over many clips), and clips that overlap after hand edits appear in it once. With stream copy it
joins the copied clips with the concat demuxer.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from avhighlights import __version__
from avhighlights.atomic import write_text
from avhighlights.errors import ConfigError, MissingFileError
from avhighlights.models.base import ProgressFn
from avhighlights.pipeline import cuts, exports, exports_otio
from avhighlights.pipeline.plot import plot_scores
from avhighlights.pipeline.progress import for_video
from avhighlights.pipeline.report_html import REPORT_NAME, write_report
from avhighlights.pipeline.results import ClipEntry, HighlightsDoc, read_results, utc_now, write_results

RESULTS_NAME = "highlights.json"
MANIFEST_NAME = ".highlights-outputs.json"  # media files the last render wrote (users may edit the JSON)
REEL_STEM = "reel"


def _text_writer(render_text: Callable[[HighlightsDoc], str]) -> Callable[[HighlightsDoc, Path], Path]:
    return lambda doc, path: write_text(path, render_text(doc))


EXPORTS: dict[str, tuple[str, Callable[[HighlightsDoc, Path], Path]]] = {
    "json": (RESULTS_NAME, write_results),  # always written (other commands read it), see _stage_everything
    "otio": ("highlights.otio", _text_writer(exports_otio.otio_text)),
    "fcpxml": ("highlights.fcpxml", _text_writer(exports_otio.fcpxml_text)),
    "fcp7": ("highlights.xml", _text_writer(exports_otio.fcp7_text)),
    "edl": ("highlights.edl", _text_writer(exports_otio.edl_text)),
    "csv": ("highlights.csv", _text_writer(exports.csv_text)),
    "vtt": ("chapters.vtt", _text_writer(exports.vtt_text)),
    "ffmeta": ("chapters.ffmeta", _text_writer(exports.ffmeta_text)),
    "png": ("scores.png", plot_scores),
    "html": (REPORT_NAME, write_report),  # embeds the plot; also writes poster.jpg
}
DEFAULT_FORMATS = tuple(EXPORTS)


@dataclass(frozen=True)
class RenderReport:
    """What a render wrote; `doc` is the document as saved (with clip and reel paths)."""

    out_dir: Path
    results_json: Path
    clip_paths: tuple[Path, ...]
    reel_path: Path | None
    exports: dict[str, Path]
    stream_copy: bool
    notes: tuple[str, ...]
    doc: HighlightsDoc
    elapsed_s: float


def clip_name(clip: ClipEntry, suffix: str = ".mp4") -> str:
    return f"clip_{clip.rank:02d}_{clip.start_s:08.2f}-{clip.end_s:08.2f}{suffix}"


def render_outputs(doc: HighlightsDoc, out_dir: str | Path, *, stream_copy: bool = False, write_clips: bool = True,
                   write_reel: bool = True, formats: Iterable[str] = DEFAULT_FORMATS,
                   progress: ProgressFn | None = None) -> RenderReport:
    """Render `doc` into `out_dir`: clips, reel, highlights.json and the export `formats`
    (any of `EXPORTS`; highlights.json is written whether "json" is among them or not)."""
    t0, out_dir, formats = time.monotonic(), Path(out_dir), tuple(formats)
    _check_request(doc, formats, write_clips or write_reel)
    out_dir.mkdir(parents=True, exist_ok=True)
    previous = _previous_outputs(out_dir)
    job = _MediaJob(doc, Path(tempfile.mkdtemp(prefix=".render-", dir=out_dir)), stream_copy,
                    progress or (lambda stage, fraction: None))
    try:
        saved = _stage_everything(job, write_clips, write_reel, formats)
        produced = _commit(job.staging, out_dir)
    finally:
        shutil.rmtree(job.staging, ignore_errors=True)
    _remove_stale(out_dir, previous - set(produced))
    return RenderReport(
        out_dir, out_dir / RESULTS_NAME, tuple(out_dir / c.path for c in saved.clips if c.path),
        out_dir / saved.reel if saved.reel else None, {f: out_dir / EXPORTS[f][0] for f in (*formats, "json")},
        stream_copy, tuple(job.notes), dataclasses.replace(saved, source=out_dir / RESULTS_NAME),
        time.monotonic() - t0,
    )


def _check_request(doc: HighlightsDoc, formats: tuple[str, ...], needs_media: bool) -> None:
    unknown = sorted(set(formats) - set(EXPORTS))
    if unknown:
        raise ConfigError(f"unknown export formats {unknown}; known: {sorted(EXPORTS)}")
    outside = [c.rank for c in doc.clips if not 0.0 <= c.start_s < c.end_s <= doc.video.duration_s + 1e-3]
    if outside:
        raise ConfigError(f"{doc.video.path}: clips of rank {outside} are empty or outside [0, {doc.video.duration_s}]")
    if doc.clips and needs_media and not Path(doc.video.path).is_file():
        raise MissingFileError(doc.video.path, "input video is missing, cannot cut clips")


def _stage_everything(job: _MediaJob, write_clips: bool, write_reel: bool, formats: tuple[str, ...]) -> HighlightsDoc:
    """Media, exports, highlights.json and the manifest of media files, all inside the staging folder."""
    saved = job.run(write_clips, write_reel)
    saved = dataclasses.replace(saved, created_utc=saved.created_utc or utc_now(), tool_version=__version__)
    for fmt in formats:
        if fmt != "json":  # written last, below, in every case
            EXPORTS[fmt][1](saved, job.staging / EXPORTS[fmt][0])
    write_results(saved, job.staging / RESULTS_NAME)
    media = [c.path for c in saved.clips if c.path] + ([saved.reel] if saved.reel else [])
    write_text(job.staging / MANIFEST_NAME, json.dumps({"media": media}, indent=1) + "\n")
    return saved


def render_from_json(path: str | Path, out_dir: str | Path | None = None, **options) -> RenderReport:
    """Re-render from a (possibly edited) highlights.json; `out_dir` defaults to the file's folder.
    `options` are those of `render_outputs`."""
    path = Path(path)
    doc = read_results(path)
    with for_video(options.get("progress"), doc.video.path):  # progress events and errors name the video
        return render_outputs(doc, path.parent if out_dir is None else out_dir, **options)


class _MediaJob:
    """Cuts the clips and the reel of one document into the staging folder."""

    def __init__(self, doc: HighlightsDoc, staging: Path, stream_copy: bool, progress: ProgressFn):
        self.doc, self.staging, self.stream_copy, self.progress = doc, staging, stream_copy, progress
        self.suffix = cuts.stream_copy_suffix(doc.video) if stream_copy else ".mp4"
        self.notes: list[str] = []
        if stream_copy:
            self.notes.append("stream copy: clips are cut on keyframes without re-encoding, so each may start "
                              "up to one keyframe interval before its requested start")
        if self.suffix != ".mp4":
            self.notes.append(f"stream copy: {doc.video.video_codec}/{doc.video.audio_codec} does not fit in MP4, "
                              f"clips are written as {self.suffix}")

    def run(self, write_clips: bool, write_reel: bool) -> HighlightsDoc:
        if not self.doc.clips:
            self.notes.append("no clips selected: no clip files and no reel written")
            return dataclasses.replace(self.doc, reel=None)
        need_parts = write_clips or (write_reel and self.stream_copy)
        parts = self._cut_clips(self.staging if write_clips else self.staging / "parts") if need_parts else {}
        reel = self._reel(parts) if write_reel else None
        clips = tuple(dataclasses.replace(c, path=parts[c.rank].name if write_clips else None)
                      for c in self.doc.clips)
        return dataclasses.replace(self.doc, clips=clips, reel=reel.name if reel else None)

    def _cut_clips(self, folder: Path) -> dict[int, Path]:
        folder.mkdir(exist_ok=True)
        paths, ordered = {}, self.doc.clips_in_time_order()
        for i, clip in enumerate(ordered):
            start_s, end_s = cuts.snapped_span(clip.start_s, clip.end_s, self.doc.video)
            args = cuts.clip_command(self.doc.video, start_s, end_s, stream_copy=self.stream_copy)
            paths[clip.rank] = cuts.run_ffmpeg(args, folder / clip_name(clip, self.suffix), self.doc.video.path)
            self.progress("render clips", (i + 1) / len(ordered))
        return paths

    def _reel(self, parts: dict[int, Path]) -> Path:
        target = self.staging / f"{REEL_STEM}{self.suffix}"
        ordered = self.doc.clips_in_time_order()
        if self.stream_copy:
            list_file = write_text(self.staging / "reel.concat", cuts.concat_list([parts[c.rank] for c in ordered]))
            args = cuts.concat_copy_command(list_file)
        else:
            spans_s = _union([cuts.snapped_span(c.start_s, c.end_s, self.doc.video) for c in ordered])
            graph_file = write_text(self.staging / "reel.filtergraph", cuts.reel_graph(self.doc.video, spans_s))
            args = cuts.reel_command(self.doc.video, graph_file)
        cuts.run_ffmpeg(args, target, self.doc.video.path)
        self.progress("render reel", 1.0)
        return target


def _union(spans_s: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping spans (possible after hand edits) joined, so the reel shows every moment once."""
    joined: list[tuple[float, float]] = []
    for start_s, end_s in sorted(spans_s):
        if joined and start_s < joined[-1][1]:
            joined[-1] = (joined[-1][0], max(joined[-1][1], end_s))
        else:
            joined.append((start_s, end_s))
    return joined


def _commit(staging: Path, out_dir: Path) -> list[Path]:
    """Move the staged media, then the exports, then highlights.json into `out_dir`."""
    staged = [p for p in staging.iterdir() if p.is_file() and p.suffix not in (".concat", ".filtergraph")]
    order = sorted(staged, key=lambda p: (p.name == RESULTS_NAME, p.suffix not in (".mp4", ".mkv"), p.name))
    for path in order:
        os.replace(path, out_dir / path.name)
    return [out_dir / p.name for p in order]


def _previous_outputs(out_dir: Path) -> set[Path]:
    """Clip and reel files an earlier render in `out_dir` wrote: those in its manifest and those its
    highlights.json lists (plain names inside `out_dir` only)."""
    names = _json_field(out_dir / MANIFEST_NAME, lambda d: d.get("media", []))
    names += _json_field(out_dir / RESULTS_NAME,
                         lambda d: [c.get("path") for c in d.get("clips", [])] + [d.get("reel")])
    return {out_dir / n for n in names if isinstance(n, str) and n and Path(n).name == n}


def _json_field(path: Path, pick: Callable[[dict], list]) -> list:
    try:
        return list(pick(json.loads(path.read_text(encoding="utf-8"))))
    except (OSError, ValueError, AttributeError, TypeError):
        return []


def _remove_stale(out_dir: Path, stale: set[Path]) -> None:
    for path in stale:
        if path.parent == out_dir and path.suffix in (".mp4", ".mkv"):
            path.unlink(missing_ok=True)
