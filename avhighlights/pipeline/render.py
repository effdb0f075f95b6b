"""Stage 6: write the clips, the reel and the result files of a highlights document.

Everything is produced in a staging folder inside `out_dir` and moved into place only when all of
it succeeded (media first, `highlights.json` last). On failure the staging folder is removed, so
nothing half-written remains and outputs of an earlier render stay intact. Clips that an earlier
render in the same folder wrote and the new document no longer lists are removed after success.
The input video is only read.

Safety (see `outdir.py` and `render_checks.py`): one render per folder at a time (exit 8 otherwise);
the source must be the scored video (sha256) and the document's duration the file's; every written
clip and the reel must hold the source's frames of their spans (exit 3 naming the source otherwise);
only media the renderer itself wrote is ever deleted; staging folders of killed runs are removed,
ffmpeg children die with the run, and SIGTERM cleans up before exiting.

Clips: `clip_{rank:02d}_{start:08.2f}-{end:08.2f}.mp4`, re-encoded (libx264 veryfast crf 20 + AAC)
and frame accurate by default; `stream_copy=True` cuts without re-encoding: each span is first moved
to start on the keyframe at or before it, and the times actually written (probed from each clip) are
what highlights.json and every export carry; the report's notes say so. The reel
(`reel.mp4`) holds the clips in time order; re-encoded, it is cut straight from the source with one
segment/concat filter graph (exact frames, audio cut at the same spans, so no drift accumulates
over many clips; every frame goes to one span, one pass whatever the clip count), and clips that
overlap after hand edits appear in it once. With stream copy it joins the copied clips with the concat
demuxer.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from avhighlights import __version__
from avhighlights.core.atomic import write_text
from avhighlights.core.errors import ConfigError, MissingFileError, OutputError
from avhighlights.core.progress import ProgressFn
from avhighlights.pipeline import exports, exports_otio, outdir
from avhighlights.pipeline.children import terminate_as_exit
from avhighlights.pipeline.outdir import MANIFEST_NAME, Manifest
from avhighlights.pipeline.plot import plot_scores
from avhighlights.pipeline.progress import for_video
from avhighlights.pipeline.render_checks import SourceState, verify_source
from avhighlights.pipeline.render_media import REEL_STEM, MediaJob, clip_name, span_score
from avhighlights.pipeline.report_html import REPORT_NAME, write_report
from avhighlights.pipeline.results import ClipEntry, HighlightsDoc, read_results, utc_now, write_results

RESULTS_NAME = "highlights.json"
__all__ = ["MANIFEST_NAME", "REEL_STEM", "RESULTS_NAME", "RenderReport", "clip_name", "render_from_json",
           "render_outputs", "span_score"]


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


def render_outputs(doc: HighlightsDoc, out_dir: str | Path, *, stream_copy: bool = False, write_clips: bool = True,
                   write_reel: bool = True, formats: Iterable[str] = DEFAULT_FORMATS,
                   progress: ProgressFn | None = None) -> RenderReport:
    """Render `doc` into `out_dir`: clips, reel, highlights.json and the export `formats`
    (any of `EXPORTS`; highlights.json is written whether "json" is among them or not)."""
    t0, out_dir, formats = time.monotonic(), Path(out_dir), tuple(formats)
    needs_media = bool(doc.clips) and (write_clips or write_reel)
    _check_request(doc, formats, needs_media)
    with outdir.locked(out_dir), terminate_as_exit():
        outdir.remove_stale_staging(out_dir)
        manifest = outdir.read_manifest(out_dir)
        source = verify_source(doc.video, SourceState.from_json(manifest.source)) if needs_media else None
        job = MediaJob(doc, outdir.make_staging(out_dir), stream_copy, progress or (lambda stage, fraction: None))
        try:
            if needs_media:
                job.load_source()
            saved = _stage_everything(job, write_clips, write_reel, formats, source)
            outdir.write_manifest(out_dir, _pending_manifest(manifest, saved, source))  # before any move
            produced = _commit(job.staging, out_dir)
        finally:
            shutil.rmtree(job.staging, ignore_errors=True)
        _remove_stale(out_dir, manifest.owned_media(out_dir) - set(produced))
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
    if needs_media and not Path(doc.video.path).is_file():
        raise MissingFileError(doc.video.path, "input video is missing, cannot cut clips")


def _refuse_other_source(out_dir: Path, doc: HighlightsDoc) -> None:
    """Never overwrite the results of another video (another sha256) in `out_dir`."""
    other = existing_source_sha256(out_dir)
    if other is not None and other != doc.video.sha256:
        raise OutputError(f"{out_dir}: holds the results of another video (sha256 {other[:12]}...); "
                          f"choose another output folder for {doc.video.path}")


def existing_source_sha256(out_dir: Path) -> str | None:
    """The source sha256 of the highlights.json already in `out_dir` (None when there is none)."""
    try:
        return str(read_results(out_dir / RESULTS_NAME).video.sha256)
    except ConfigError:
        return None


def _stage_everything(job: MediaJob, write_clips: bool, write_reel: bool, formats: tuple[str, ...],
                      source: SourceState | None) -> HighlightsDoc:
    """Media, exports, highlights.json and the manifest of media files, all inside the staging folder."""
    saved = job.run(write_clips, write_reel)
    saved = dataclasses.replace(saved, created_utc=saved.created_utc or utc_now(), tool_version=__version__)
    for fmt in formats:
        if fmt != "json":  # written last, below, in every case
            EXPORTS[fmt][1](saved, job.staging / EXPORTS[fmt][0])
    write_results(saved, job.staging / RESULTS_NAME)
    outdir.write_manifest(job.staging, _manifest_of(saved, source))
    return saved


def _manifest_of(doc: HighlightsDoc, source: SourceState | None) -> Manifest:
    media = [c.path for c in doc.clips if c.path] + ([doc.reel] if doc.reel else [])
    spans = {c.path: (c.start_s, c.end_s) for c in doc.clips if c.path}
    return Manifest(frozenset(media), spans, source.to_json() if source else None)


def _pending_manifest(previous: Manifest, saved: HighlightsDoc, source: SourceState | None) -> Manifest:
    """Previous and new media together: written before the move, so a run killed mid-way leaves no
    media file that no manifest claims."""
    new = _manifest_of(saved, source)
    return Manifest(previous.media | new.media, {**previous.clip_spans, **new.clip_spans}, new.source)


def render_from_json(path: str | Path, out_dir: str | Path | None = None, **options) -> RenderReport:
    """Re-render from a (possibly edited) highlights.json; `out_dir` defaults to the file's folder and must
    not hold another video's results (OutputError).
    Clips whose span differs from what the last render here wrote get their score recomputed from the
    per-second scores. `options` are those of `render_outputs`."""
    path = Path(path)
    doc = read_results(path)
    doc = rescore_edited(doc, outdir.read_manifest(path.parent).clip_spans)
    target = path.parent if out_dir is None else Path(out_dir)
    _refuse_other_source(target, doc)
    with for_video(options.get("progress"), doc.video.path):  # progress events and errors name the video
        return render_outputs(doc, target, **options)


def rescore_edited(doc: HighlightsDoc, written: dict[str, tuple[float, float]]) -> HighlightsDoc:
    """Clips whose (path, span) is not what was written get the mean score of their new span."""
    def rescored(clip: ClipEntry) -> ClipEntry:
        if clip.path is not None and written.get(clip.path) == (clip.start_s, clip.end_s):
            return clip
        return dataclasses.replace(clip, score=span_score(doc, clip.start_s, clip.end_s, clip.score))
    return dataclasses.replace(doc, clips=tuple(rescored(c) for c in doc.clips))


def _commit(staging: Path, out_dir: Path) -> list[Path]:
    """Move the staged media, then the exports, then highlights.json into `out_dir`."""
    staged = [p for p in staging.iterdir() if p.is_file() and p.suffix not in (".concat", ".filtergraph")]
    order = sorted(staged, key=lambda p: (p.name == RESULTS_NAME, p.suffix not in (".mp4", ".mkv"), p.name))
    for path in order:
        os.replace(path, out_dir / path.name)
    return [out_dir / p.name for p in order]


def _remove_stale(out_dir: Path, stale: set[Path]) -> None:
    """Delete owned media (recorded in the manifest and named as the renderer names files) not written now."""
    for path in stale:
        if path.parent == out_dir and outdir.OWNED_MEDIA.match(path.name):
            path.unlink(missing_ok=True)
