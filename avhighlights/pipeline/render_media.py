"""The media half of a render: the clips and the reel of one document, cut into the staging folder and checked.

Re-encoded clips are smart-cut where the source allows (`smart_cut.py`), several at a time (`clip_pool.py`),
and each written file is checked against its span (`render_checks.py`: one ffprobe per file, which also decodes
it where frames were copied without decoding). See `render.py` for the render as a whole.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from avhighlights.core.atomic import write_text
from avhighlights.core.progress import ProgressFn
from avhighlights.core.timebase import Spans, align
from avhighlights.pipeline import clip_pool, cuts, smart_cut
from avhighlights.pipeline.frame_times import VideoTimeline, read_timeline
from avhighlights.pipeline.probe import probe
from avhighlights.pipeline.render_checks import (
    Expected,
    ShortDecodeError,
    check_document_duration,
    check_written,
    measure_written,
)
from avhighlights.pipeline.results import ClipEntry, HighlightsDoc

REEL_STEM = "reel"
COPY_MISSING_FRAMES = 4  # stream copy drops B-frames before the first keyframe that need the previous GOP
KEYFRAME_SEEK_S = 5e-4  # stream copy seeks this far past the keyframe (a seek exactly on it may land on the one before)


def clip_name(clip: ClipEntry, suffix: str = ".mp4") -> str:
    start_s, end_s = clip.start_s + 0.0, clip.end_s + 0.0  # + 0.0 turns an edited -0.0 into 0.0 (no "-0000.00")
    return f"clip_{clip.rank:02d}_{start_s:08.2f}-{end_s:08.2f}{suffix}"


def span_score(doc: HighlightsDoc, start_s: float, end_s: float, fallback: float) -> float:
    """Overlap-weighted mean of the per-second scores over [start_s, end_s) (as selection scores clips)."""
    if len(doc.curve.scores) == 0:
        return fallback
    spans = Spans(doc.curve.start_s, doc.curve.end_s)
    return float(align(doc.curve.scores, spans, Spans(np.array([start_s]), np.array([end_s])))[0])


class MediaJob:
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
        """Every clip, a few at a time (`clip_pool`); notes, results and the first error come in time order."""
        folder.mkdir(exist_ok=True)
        ordered = sorted(clips, key=lambda c: (c.start_s, c.end_s, c.rank))
        if not self.stream_copy:
            self._smart_cut_ok()  # decided (and noted) once, before the clips start
        workers = clip_pool.clip_workers(len(ordered))
        threads = clip_pool.threads_per_worker(workers)

        def cut(clip: ClipEntry) -> tuple[ClipEntry, Path, list[str]]:
            return self._copy_clip(clip, folder) if self.stream_copy else self._encode_clip(clip, folder, threads)

        written = clip_pool.map_in_order(cut, ordered, workers,
                                         lambda done: self.progress("render clips", done / len(ordered)))
        done, paths = {}, {}
        for clip, (real, path, notes) in zip(ordered, written, strict=True):
            done[clip.rank], paths[clip.rank] = real, path
            self.notes.extend(notes)
        return paths, [done[c.rank] for c in clips]

    def _encode_clip(self, clip: ClipEntry, folder: Path, threads: int) -> tuple[ClipEntry, Path, list[str]]:
        start_s, end_s = cuts.snapped_span(clip.start_s, clip.end_s, self.info, self._timeline())
        target, expected = folder / clip_name(clip, self.suffix), self._expected([(start_s, end_s)])
        parts = smart_cut.parts_or_whole(start_s, end_s, self._timeline()) if self._smart_cut_ok() else None
        notes: list[str] = []
        path = self._smart_cut_clip(parts, target, clip.rank, threads, notes) if parts else None
        copied = path is not None and any(part.copy for part in parts or ())
        if path is None:
            path = cuts.run_ffmpeg(cuts.clip_command(self.info, start_s, end_s, stream_copy=False, threads=threads),
                                   target, self.info.path)
        # copied frames were not decoded while cutting: the check decodes the clip then (in the same process)
        check_written(path, expected, self.info.path, decode=copied)
        return clip, path, notes

    def _smart_cut_clip(self, parts: list[smart_cut.Part], target: Path, rank: int, threads: int,
                        notes: list[str]) -> Path | None:
        """The clip written by smart cut; None (with a note) when its parts did not come out joinable."""
        try:
            path = smart_cut.write_clip(self.info, parts, target, target.parent / f".parts-{rank:02d}", threads)
        except smart_cut.PartMismatchError as error:
            notes.append(f"clip {rank} re-encoded in full: {error}")
            return None
        self.smart_cut_ranks.add(rank)
        return path

    def _smart_cut_ok(self) -> bool:
        """Whether clips can be smart-cut (decided once per source; a note says why not)."""
        if self.smart_cut_reason is None:
            self.smart_cut_reason = smart_cut.fallback_reason(self.info, self._timeline()) or ""
            if self.smart_cut_reason:
                self.notes.append(f"clips are re-encoded in full (no smart cut: {self.smart_cut_reason})")
        return not self.smart_cut_reason

    def _copy_clip(self, clip: ClipEntry, folder: Path) -> tuple[ClipEntry, Path, list[str]]:
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
        return real, path, []

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
            spans_s = union([cuts.snapped_span(c.start_s, c.end_s, self.info, self._timeline()) for c in ordered])
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


def union(spans_s: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping spans (possible after hand edits) joined, so the reel shows every moment once."""
    joined: list[tuple[float, float]] = []
    for start_s, end_s in sorted(spans_s):
        if joined and start_s < joined[-1][1]:
            joined[-1] = (joined[-1][0], max(joined[-1][1], end_s))
        else:
            joined.append((start_s, end_s))
    return joined


