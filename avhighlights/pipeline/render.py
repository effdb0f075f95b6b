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
trim/concat filter graph (exact frames, audio trimmed to the same spans, so no drift accumulates
over many clips), and clips that overlap after hand edits appear in it once. With stream copy it
joins the copied clips with the concat demuxer.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avhighlights import __version__
from avhighlights.core.atomic import write_text
from avhighlights.core.errors import ConfigError, MissingFileError, OutputError
from avhighlights.core.progress import ProgressFn
from avhighlights.core.timebase import Spans, align
from avhighlights.pipeline import cuts, exports, exports_otio, outdir, smart_cut
from avhighlights.pipeline.children import terminate_as_exit
from avhighlights.pipeline.frame_times import VideoTimeline, read_timeline
from avhighlights.pipeline.outdir import MANIFEST_NAME, Manifest
from avhighlights.pipeline.plot import plot_scores
from avhighlights.pipeline.probe import probe
from avhighlights.pipeline.progress import for_video
from avhighlights.pipeline.render_checks import (
    Expected,
    ShortDecodeError,
    SourceState,
    check_decodes,
    check_document_duration,
    check_written,
    measure_written,
    verify_source,
)
from avhighlights.pipeline.report_html import REPORT_NAME, write_report
from avhighlights.pipeline.results import ClipEntry, HighlightsDoc, read_results, utc_now, write_results

RESULTS_NAME = "highlights.json"
REEL_STEM = "reel"
COPY_MISSING_FRAMES = 4  # stream copy drops B-frames before the first keyframe that need the previous GOP
KEYFRAME_SEEK_S = 5e-4  # stream copy seeks this far past the keyframe (a seek exactly on it may land on the one before)
__all__ = ["MANIFEST_NAME", "RESULTS_NAME", "RenderReport", "clip_name", "render_from_json", "render_outputs"]


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
    start_s, end_s = clip.start_s + 0.0, clip.end_s + 0.0  # + 0.0 turns an edited -0.0 into 0.0 (no "-0000.00")
    return f"clip_{clip.rank:02d}_{start_s:08.2f}-{end_s:08.2f}{suffix}"


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
        job = _MediaJob(doc, outdir.make_staging(out_dir), stream_copy, progress or (lambda stage, fraction: None))
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


def _stage_everything(job: _MediaJob, write_clips: bool, write_reel: bool, formats: tuple[str, ...],
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


def span_score(doc: HighlightsDoc, start_s: float, end_s: float, fallback: float) -> float:
    """Overlap-weighted mean of the per-second scores over [start_s, end_s) (as selection scores clips)."""
    if len(doc.curve.scores) == 0:
        return fallback
    spans = Spans(doc.curve.start_s, doc.curve.end_s)
    return float(align(doc.curve.scores, spans, Spans(np.array([start_s]), np.array([end_s])))[0])


def rescore_edited(doc: HighlightsDoc, written: dict[str, tuple[float, float]]) -> HighlightsDoc:
    """Clips whose (path, span) is not what was written get the mean score of their new span."""
    def rescored(clip: ClipEntry) -> ClipEntry:
        if clip.path is not None and written.get(clip.path) == (clip.start_s, clip.end_s):
            return clip
        return dataclasses.replace(clip, score=span_score(doc, clip.start_s, clip.end_s, clip.score))
    return dataclasses.replace(doc, clips=tuple(rescored(c) for c in doc.clips))


class _MediaJob:
    """Cuts the clips and the reel of one document into the staging folder, checking each written file."""

    def __init__(self, doc: HighlightsDoc, staging: Path, stream_copy: bool, progress: ProgressFn):
        self.doc, self.staging, self.stream_copy, self.progress = doc, staging, stream_copy, progress
        self.info, self.timeline = doc.video, None
        self.suffix = cuts.stream_copy_suffix(doc.video) if stream_copy else ".mp4"
        self.notes: list[str] = []
        self.smart_cut_reason: str | None = None  # decided on the first clip ("" when smart cut works)
        self.smart_cut_ranks: set[int] = set()
        if stream_copy:
            self.notes.append("stream copy: clips are cut on keyframes without re-encoding, so each starts on the "
                              "keyframe at or before its requested start; the times written are the real ones")
        if self.suffix != ".mp4":
            self.notes.append(f"stream copy: {doc.video.video_codec}/{doc.video.audio_codec} does not fit in MP4, "
                              f"clips are written as {self.suffix}")

    def load_source(self) -> None:
        """Probe the (verified) source again: its real duration, frame times and keyframes."""
        fresh = probe(self.doc.video.path, sha256=self.doc.video.sha256)
        check_document_duration(self.doc.video, fresh.duration_s, self.doc.source)
        self.info, self.timeline = fresh, read_timeline(fresh)

    def run(self, write_clips: bool, write_reel: bool) -> HighlightsDoc:
        if not self.doc.clips:
            self.notes.append("no clips selected: no clip files and no reel written")
            return dataclasses.replace(self.doc, reel=None)
        clips = [self._on_keyframe(c) for c in self.doc.clips] if self.stream_copy else list(self.doc.clips)
        parts: dict[int, Path] = {}
        if write_clips or (write_reel and (self.stream_copy or self._smart_cut_ok())):
            parts, clips = self._cut_clips(clips, self.staging if write_clips else self.staging / "parts")
        reel = self._reel(clips, parts) if write_reel else None
        clips = [dataclasses.replace(c, path=parts[c.rank].name if write_clips else None) for c in clips]
        return dataclasses.replace(self.doc, clips=tuple(clips), reel=reel.name if reel else None)

    def _on_keyframe(self, clip: ClipEntry) -> ClipEntry:
        start_s = self._timeline().keyframe_at_or_before_s(clip.start_s)
        return dataclasses.replace(clip, start_s=start_s)

    def _timeline(self) -> VideoTimeline:
        if self.timeline is None:
            self.load_source()
        assert self.timeline is not None
        return self.timeline

    def _cut_clips(self, clips: list[ClipEntry], folder: Path) -> tuple[dict[int, Path], list[ClipEntry]]:
        folder.mkdir(exist_ok=True)
        paths, done = {}, {}
        ordered = sorted(clips, key=lambda c: (c.start_s, c.end_s, c.rank))
        for i, clip in enumerate(ordered):
            done[clip.rank], paths[clip.rank] = self._copy_clip(clip, folder) if self.stream_copy else \
                self._encode_clip(clip, folder)
            self.progress("render clips", (i + 1) / len(ordered))
        return paths, [done[c.rank] for c in clips]

    def _encode_clip(self, clip: ClipEntry, folder: Path) -> tuple[ClipEntry, Path]:
        start_s, end_s = cuts.snapped_span(clip.start_s, clip.end_s, self.info, self._timeline())
        target, expected = folder / clip_name(clip, self.suffix), self._expected([(start_s, end_s)])
        parts = smart_cut.parts_or_whole(start_s, end_s, self._timeline()) if self._smart_cut_ok() else None
        path = self._smart_cut_clip(parts, target, expected, clip.rank) if parts else None
        if path is None:
            path = cuts.run_ffmpeg(cuts.clip_command(self.info, start_s, end_s, stream_copy=False), target,
                                   self.info.path)
        check_written(path, expected, self.info.path)
        return clip, path

    def _smart_cut_clip(self, parts: list[smart_cut.Part], target: Path, expected: Expected, rank: int) -> Path | None:
        """The clip written by smart cut; None (with a note) when its parts did not come out joinable."""
        try:
            path = smart_cut.write_clip(self.info, parts, target, target.parent / f".parts-{rank:02d}")
        except smart_cut.PartMismatchError as error:
            self.notes.append(f"clip {rank} re-encoded in full: {error}")
            return None
        if any(part.copy for part in parts):  # copied frames were not decoded while cutting
            check_decodes(path, expected, self.info.path)
        self.smart_cut_ranks.add(rank)
        return path

    def _smart_cut_ok(self) -> bool:
        """Whether clips can be smart-cut (decided once per source; a note says why not)."""
        if self.smart_cut_reason is None:
            self.smart_cut_reason = smart_cut.fallback_reason(self.info, self._timeline()) or ""
            if self.smart_cut_reason:
                self.notes.append(f"clips are re-encoded in full (no smart cut: {self.smart_cut_reason})")
        return not self.smart_cut_reason

    def _copy_clip(self, clip: ClipEntry, folder: Path) -> tuple[ClipEntry, Path]:
        """Copy from the keyframe `clip` starts on; the clip's end becomes what was really written."""
        seek_s = clip.start_s + KEYFRAME_SEEK_S  # just past the keyframe: the demuxer seeks back onto it
        args = cuts.clip_command(self.info, seek_s, max(clip.end_s, seek_s + 1e-3), stream_copy=True)
        written = cuts.run_ffmpeg(args, folder / f".cut-{clip.rank:02d}{self.suffix}", self.info.path)
        video = measure_written(written).get("video")
        end_s = min(clip.start_s + video.span_s, self.info.duration_s) if video else clip.end_s
        real = dataclasses.replace(clip, end_s=round(end_s, 6),
                                   score=span_score(self.doc, clip.start_s, end_s, clip.score))
        path = folder / clip_name(real, self.suffix)
        os.replace(written, path)
        check_written(path, self._expected([(real.start_s, real.end_s)]), self.info.path)
        return real, path

    def _expected(self, spans_s: list[tuple[float, float]], joins: int = 1) -> Expected:
        """What a file cut from `spans_s` (joined end to end) must hold."""
        timeline = self._timeline()
        frame_s = max([float(1 / self.info.fps), *(timeline.longest_frame_s(a, b) for a, b in spans_s)])
        total_s = sum(b - a for a, b in spans_s)
        return Expected(0.0 if len(spans_s) > 1 else spans_s[0][0], total_s if len(spans_s) > 1 else spans_s[0][1],
                        sum(timeline.frames_in(a, b) for a, b in spans_s), sum(timeline.covered_s(a, b) for a, b in
                                                                               spans_s), frame_s * joins,
                        self.info.has_audio,
                        decoded=not self.stream_copy, missing_frames_ok=COPY_MISSING_FRAMES * joins if
                        self.stream_copy else 1, may_run_long=self.stream_copy and joins > 1)

    def _reel(self, clips: list[ClipEntry], parts: dict[int, Path]) -> Path:
        target = self.staging / f"{REEL_STEM}{self.suffix}"
        ordered = sorted(clips, key=lambda c: (c.start_s, c.end_s, c.rank))
        if self.stream_copy:
            list_file = write_text(self.staging / "reel.concat", cuts.concat_list([parts[c.rank] for c in ordered]))
            args = cuts.concat_copy_command(list_file)
            spans_s, joins = [(c.start_s, c.end_s) for c in ordered], len(ordered)
        elif self._reel_joins_clips(ordered, parts) and self._joined_reel(ordered, parts, target):
            self.progress("render reel", 1.0)
            return target
        else:
            spans_s = _union([cuts.snapped_span(c.start_s, c.end_s, self.info, self._timeline()) for c in ordered])
            graph = cuts.reel_graph(self.info, spans_s, self._timeline())
            args, joins = cuts.reel_command(self.info, write_text(self.staging / "reel.filtergraph", graph)), 1
        cuts.run_ffmpeg(args, target, self.info.path)
        check_written(target, self._expected(spans_s, joins), self.info.path)
        self.progress("render reel", 1.0)
        return target

    def _reel_joins_clips(self, ordered: list[ClipEntry], parts: dict[int, Path]) -> bool:
        """The reel can join the written clips when all were smart-cut (so they carry their parameter sets
        in-band) and none overlaps the next (overlaps appear in the reel once, so it is cut from the source)."""
        spans_s = [cuts.snapped_span(c.start_s, c.end_s, self.info, self._timeline()) for c in ordered]
        all_smart = all(c.rank in self.smart_cut_ranks and c.rank in parts for c in ordered)
        gap_ok = all(a[1] <= b[0] + smart_cut.TIME_EPS_S for a, b in zip(spans_s, spans_s[1:], strict=False))
        return all_smart and gap_ok

    def _joined_reel(self, ordered: list[ClipEntry], parts: dict[int, Path], target: Path) -> bool:
        """The reel as the written clips end to end (video copied, audio trimmed from the source); False (with a
        note) when the join fails or does not hold the clips' frames, so the reel is cut from the source instead."""
        spans_s = [cuts.snapped_span(c.start_s, c.end_s, self.info, self._timeline()) for c in ordered]
        paths = [parts[c.rank] for c in ordered]
        listing = smart_cut.concat_list_timed([(p, b - a) for p, (a, b) in zip(paths, spans_s, strict=True)])
        list_file = write_text(self.staging / "reel.concat", listing)
        graph = write_text(self.staging / "reel.filtergraph", smart_cut.reel_audio_graph(spans_s)) \
            if self.info.has_audio else None
        try:
            cuts.run_ffmpeg(smart_cut.reel_join_command(self.info, list_file, graph), target, self.info.path)
            check_written(target, self._expected(spans_s, len(spans_s)), self.info.path)
        except (cuts.RenderError, ShortDecodeError) as error:
            self.notes.append(f"the reel is re-encoded from the source (joining the clips failed: {error.reason})")
            target.unlink(missing_ok=True)
            return False
        return True


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


def _remove_stale(out_dir: Path, stale: set[Path]) -> None:
    """Delete owned media (recorded in the manifest and named as the renderer names files) not written now."""
    for path in stale:
        if path.parent == out_dir and outdir.OWNED_MEDIA.match(path.name):
            path.unlink(missing_ok=True)
