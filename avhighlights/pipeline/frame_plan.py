"""Serving frame and clip requests from one forward decode in bounded chunks (the shared pass).

Each request becomes a job: the frame indices it needs, in its own order (`frame_index_at` for frames,
`clip_indices` per span for clips; both never decrease). The union of every job's (index, size) pairs is
decoded in ascending index order, `chunk_frames` distinct indices per reader call; after each chunk every job
takes the batches whose frames have all been decoded, and a frame is dropped once its last user has it. So the
frames held at any time are at most one chunk plus each job's unfinished batch, whatever the video's length.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from avhighlights.core.frame_requests import ClipRequest, FrameRequest, MediaRequest, Size
from avhighlights.core.types import ClipBatch, FrameBatch
from avhighlights.pipeline.frames import clip_indices, frame_index_at

CHUNK_FRAMES = 32
ReadSized = Callable[[Mapping[int, Collection[Size]]], Mapping[tuple[int, Size], np.ndarray]]


@dataclass
class PassStats:
    """What one pass did: reader calls, distinct frames converted, and the most frames held at once."""

    reads: int = 0
    frames_read: int = 0
    peak_frames_held: int = 0


class _Job:
    def __init__(self, request: MediaRequest, timestamps_s: np.ndarray):
        self.request = request
        if isinstance(request, FrameRequest):
            self.per_item = 1
            self.flat = frame_index_at(timestamps_s, np.asarray(request.times_s, np.float64))  # (T,)
        else:
            self.per_item = request.n_frames
            spans = zip(np.asarray(request.start_s, np.float64), np.asarray(request.end_s, np.float64), strict=True)
            parts = [clip_indices(timestamps_s, a, b, request.n_frames) for a, b in spans]
            self.flat = np.concatenate(parts) if parts else np.zeros(0, np.int64)  # (T * n_frames,)
        self.done_items = 0

    @property
    def finished(self) -> bool:
        return self.done_items >= self.request.n_items

    def next_batch_span(self) -> tuple[int, int]:
        lo = self.done_items
        return lo, min(lo + max(1, self.request.batch_size), self.request.n_items)

    def batch_indices(self, lo: int, hi: int) -> np.ndarray:
        return self.flat[lo * self.per_item:hi * self.per_item]

    def make_batch(self, frames: np.ndarray, lo: int, hi: int) -> FrameBatch | ClipBatch:
        r = self.request
        if isinstance(r, FrameRequest):
            return FrameBatch(np.asarray(r.times_s, np.float64)[lo:hi], frames)  # (B, h, w, 3)
        assert isinstance(r, ClipRequest)
        clips = frames.reshape(hi - lo, r.n_frames, *frames.shape[1:])  # (B, n, h, w, 3)
        return ClipBatch(np.asarray(r.start_s, np.float64)[lo:hi], np.asarray(r.end_s, np.float64)[lo:hi], clips)


def serve_requests(read_sized: ReadSized, timestamps_s: np.ndarray, requests: Sequence[MediaRequest],
                   chunk_frames: int = CHUNK_FRAMES, stats: PassStats | None = None
                   ) -> Iterator[tuple[int, FrameBatch | ClipBatch]]:
    """(request number, batch) in decode order; every request's batches come in its own order."""
    stats = stats if stats is not None else PassStats()
    jobs = [_Job(r, timestamps_s) for r in requests]
    uses = Counter((int(i), job.request.size) for job in jobs for i in job.flat)
    sizes_of: dict[int, set[Size]] = {}
    for index, size in uses:
        sizes_of.setdefault(index, set()).add(size)
    held: dict[tuple[int, Size], np.ndarray] = {}
    order = sorted(sizes_of)
    for lo in range(0, len(order), max(1, chunk_frames)):
        chunk = order[lo:lo + chunk_frames]
        held.update(read_sized({i: sizes_of[i] for i in chunk}))
        stats.reads, stats.frames_read = stats.reads + 1, stats.frames_read + len(chunk)
        stats.peak_frames_held = max(stats.peak_frames_held, len(held))
        for number, job in enumerate(jobs):
            yield from ((number, batch) for batch in _ready_batches(job, chunk[-1], held, uses))


def _ready_batches(job: _Job, decoded_through: int, held: dict, uses: Counter) -> Iterator[FrameBatch | ClipBatch]:
    """The job's next batches whose frames are all decoded; frames nobody needs any more are dropped."""
    while not job.finished:
        lo, hi = job.next_batch_span()
        indices = job.batch_indices(lo, hi)
        if len(indices) and int(indices.max()) > decoded_through:
            return
        size = job.request.size
        frames = np.stack([held[int(i), size] for i in indices]) if len(indices) else np.zeros((0, 0, 0, 3), np.uint8)
        for i in indices:
            key = (int(i), size)
            uses[key] -= 1
            if uses[key] == 0:
                del held[key]
        job.done_items = hi
        yield job.make_batch(frames, lo, hi)
