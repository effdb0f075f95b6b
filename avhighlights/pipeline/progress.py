"""Progress reporting for long work: tqdm bars for people, JSON lines for machines, or nothing.

Work reports either a fraction (`progress(stage, fraction)`, the `ProgressFn` of models/base.py) or a count
(`report_count(progress, stage, done, total, unit)`: "12.0/37.5 s of video"), and names the video it works on
with `for_video(progress, path)`. Both helpers accept any `ProgressFn`: plain functions get the fraction only.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TextIO

PROGRESS_MODES = ("bar", "json", "none")
FRACTION_BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]"  # work known only as a fraction


class Progress:
    """Callable `progress(stage, fraction)` (the `ProgressFn` of models/base.py).

    `bar` draws one tqdm bar per stage on stderr (tqdm's default format: counts, rate and ETA); `json` writes
    one JSON object per update to stderr (`{"event": "progress", "stage": ..., "fraction": ..., "video": ...,
    "video_name": ..., "elapsed_s": ...}`, plus `done`, `total` and `unit` for counted work); `none` is silent.
    Every JSON event names the video being worked on (`video`: its path, `video_name`: its file name; both null
    while the work concerns several videos at once). `video` is the default when the run has a single input.
    """

    def __init__(self, mode: str = "bar", stream: TextIO | None = None, prefix: str = "",
                 video: str | Path | None = None):
        if mode not in PROGRESS_MODES:
            raise ValueError(f"progress mode must be one of {PROGRESS_MODES}, got {mode!r}")
        self.mode = mode
        self.stream = stream or sys.stderr
        self.prefix = prefix
        self.video: Path | None = Path(video) if video is not None else None
        self._bars: dict[str, object] = {}
        self._t0 = time.monotonic()

    def __call__(self, stage: str, fraction: float) -> None:
        stage = f"{self.prefix}{stage}"
        fraction = min(max(float(fraction), 0.0), 1.0)
        if self.mode == "json":
            self.event("progress", stage=stage, fraction=round(fraction, 4))
        elif self.mode == "bar":
            self._update_bar(stage, fraction * 100.0, 100.0, "%")

    def count(self, stage: str, done: float, total: float, unit: str = "it") -> None:
        """`done` of `total` units of work (e.g. 12.5 of 37.5 "s of video", 3 of 12 "files")."""
        stage = f"{self.prefix}{stage}"
        total = max(float(total), 0.0)
        done = min(max(float(done), 0.0), total)
        fraction = done / total if total > 0 else 1.0
        if self.mode == "json":
            self.event("progress", stage=stage, fraction=round(fraction, 4), done=round(done, 3),
                       total=round(total, 3), unit=unit)
        elif self.mode == "bar":
            self._update_bar(stage, done, total, unit)

    def event(self, name: str, **fields: object) -> None:
        """A machine-readable event (json mode only), naming the current video unless `fields` do."""
        if self.mode != "json":
            return
        video = fields.pop("video", self.video)
        payload = {"event": name, "video": None if video is None else str(video),
                   "video_name": None if video is None else Path(str(video)).name, **fields,
                   "elapsed_s": round(time.monotonic() - self._t0, 3)}
        self.stream.write(json.dumps(payload, default=str) + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        """A human-readable line (bar mode), an event (json mode)."""
        if self.mode == "bar":
            self.stream.write(text + "\n")
        self.event("message", text=text)

    def error(self, exc: BaseException, exit_code: int) -> None:
        """The failure that ends the run: a JSON `error` event (json mode), one plain line otherwise."""
        video = getattr(exc, "video", None) or getattr(exc, "path", None) or self.video
        if self.mode == "json":
            self.close()
            self.event("error", video=video, error=str(exc), error_type=type(exc).__name__, exit_code=exit_code)
        else:
            self.close()
            self.stream.write(f"avhighlights: error: {exc}\n")
            self.stream.flush()

    @contextmanager
    def video_scope(self, video: str | Path | None) -> Iterator[None]:
        """Name `video` in every event inside the block; errors raised in it remember the video (`exc.video`)."""
        previous, self.video = self.video, (Path(video) if video is not None else None)
        try:
            yield
        except Exception as exc:
            if video is not None and getattr(exc, "video", None) is None:
                try:
                    exc.video = Path(video)
                except AttributeError:  # exceptions with __slots__
                    pass
            raise
        finally:
            self.video = previous

    def _update_bar(self, stage: str, done: float, total: float, unit: str) -> None:
        from tqdm import tqdm

        bar = self._bars.get(stage)
        if bar is None:
            name = f"{stage} [{self.video.name}]" if self.video is not None and not stage.startswith("probe") else stage
            bar_format = FRACTION_BAR_FORMAT if unit == "%" else None  # counted work: tqdm's default format
            bar = tqdm(total=_tidy(total), desc=name, unit=unit, file=self.stream, leave=False, dynamic_ncols=True,
                       bar_format=bar_format)
            self._bars[stage] = bar
        step = _tidy(done) - bar.n
        if step > 0:
            bar.update(step)
        else:
            bar.refresh()
        if done >= total:
            bar.close()
            del self._bars[stage]

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()


def _tidy(value: float) -> float | int:
    """Whole numbers as int (tqdm prints "3/12"), others rounded to 0.1 ("12.5/37.5")."""
    return int(value) if float(value).is_integer() else round(float(value), 1)


def report_count(progress, stage: str, done: float, total: float, unit: str = "it") -> None:
    """Counted progress on any `ProgressFn`: `Progress.count` when it has one, else the fraction."""
    if progress is None:
        return
    count = getattr(progress, "count", None)
    if callable(count):
        count(stage, done, total, unit)
    else:
        progress(stage, done / total if total > 0 else 1.0)


def for_video(progress, video: str | Path | None):
    """`progress.video_scope(video)` when `progress` is a `Progress`, else a no-op context."""
    scope = getattr(progress, "video_scope", None)
    return scope(video) if callable(scope) else nullcontext()


def null_progress(stage: str, fraction: float) -> None:
    """A progress function that does nothing."""
