"""Clips written a few at a time: a bounded thread pool whose results, errors and progress come in input order.

Each clip is a handful of short ffmpeg/ffprobe processes, and most of a short clip's cost is the processes'
start-up and the single-threaded parts of ffmpeg (demuxing, muxing, AAC), so two clips at once on two cores
finish in about half the time of one after the other. `workers` = min(CPU cores, clips, `MAX_CLIP_WORKERS`);
each ffmpeg then gets `threads_per_worker` threads (cores / workers), so the pool does not oversubscribe the
CPU. Results and the first error are those of the earliest clip in input order, whatever finishes first, so
a render's outputs and messages do not depend on timing. When the caller stops early (an error, SIGTERM's
SystemExit) the clips not started are dropped and the running ones' children are killed before it returns.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from avhighlights.core.errors import ConfigError
from avhighlights.pipeline.children import ChildGroup

MAX_CLIP_WORKERS = 8  # more gains nothing measurable: ffmpeg's own threads fill the cores
CPU_ENV = "AVH_CLIP_WORKERS"  # an integer: at most that many clips at once (1: one after the other)

T = TypeVar("T")
R = TypeVar("R")


def clip_workers(n_clips: int) -> int:
    """How many clips to write at once."""
    return max(1, min(os.cpu_count() or 1, n_clips, _worker_limit()))


def _worker_limit() -> int:
    """$AVH_CLIP_WORKERS (a positive integer), else MAX_CLIP_WORKERS; anything else is a ConfigError (exit 2)."""
    text = os.environ.get(CPU_ENV, "").strip()
    if not text:
        return MAX_CLIP_WORKERS
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"${CPU_ENV} must be a positive integer (clips written at once), got {text!r}")
    return int(text)


def threads_per_worker(workers: int) -> int:
    """ffmpeg threads per process when `workers` run at once (0: ffmpeg's own choice, for a single worker)."""
    return 0 if workers <= 1 else max(1, (os.cpu_count() or 1) // workers)


def map_in_order(task: Callable[[T], R], items: Sequence[T], workers: int,
                 on_done: Callable[[int], None] = lambda done: None) -> list[R]:
    """`[task(x) for x in items]`, `workers` at a time; `on_done(k)` after the first k results are in."""
    if workers <= 1:
        results = []
        for item in items:
            results.append(task(item))
            on_done(len(results))
        return results
    group = ChildGroup()

    def in_group(item: T) -> R:
        with group.joined():
            return task(item)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="avh-clip") as pool:
        futures = [pool.submit(in_group, item) for item in items]
        try:
            results = []
            for future in futures:
                results.append(future.result())
                on_done(len(results))
        except BaseException:
            for future in futures:
                future.cancel()
            group.kill()
            raise
    return results
