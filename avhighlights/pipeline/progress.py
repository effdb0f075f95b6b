"""Progress reporting for long work: tqdm bars for people, JSON lines for machines, or nothing."""

from __future__ import annotations

import json
import sys
import time
from typing import TextIO

PROGRESS_MODES = ("bar", "json", "none")


class Progress:
    """Callable `progress(stage, fraction)` (the `ProgressFn` of models/base.py).

    `bar` draws one tqdm bar per stage on stderr; `json` writes one JSON object per update to
    stderr (`{"event": "progress", "stage": ..., "fraction": ..., "elapsed_s": ...}`); `none` is silent.
    """

    def __init__(self, mode: str = "bar", stream: TextIO | None = None, prefix: str = ""):
        if mode not in PROGRESS_MODES:
            raise ValueError(f"progress mode must be one of {PROGRESS_MODES}, got {mode!r}")
        self.mode = mode
        self.stream = stream or sys.stderr
        self.prefix = prefix
        self._bars: dict[str, object] = {}
        self._t0 = time.monotonic()

    def __call__(self, stage: str, fraction: float) -> None:
        stage = f"{self.prefix}{stage}"
        fraction = min(max(float(fraction), 0.0), 1.0)
        if self.mode == "json":
            self.event("progress", stage=stage, fraction=round(fraction, 4))
        elif self.mode == "bar":
            self._update_bar(stage, fraction)

    def event(self, name: str, **fields: object) -> None:
        """A machine-readable event (json mode only)."""
        if self.mode != "json":
            return
        payload = {"event": name, **fields, "elapsed_s": round(time.monotonic() - self._t0, 3)}
        self.stream.write(json.dumps(payload, default=str) + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        """A human-readable line (bar mode), an event (json mode)."""
        if self.mode == "bar":
            self.stream.write(text + "\n")
        self.event("message", text=text)

    def _update_bar(self, stage: str, fraction: float) -> None:
        from tqdm import tqdm

        bar = self._bars.get(stage)
        if bar is None:
            bar = tqdm(total=1000, desc=stage, file=self.stream, leave=False,
                       bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}")
            self._bars[stage] = bar
        bar.n = int(fraction * 1000)
        bar.refresh()
        if fraction >= 1.0:
            bar.close()
            del self._bars[stage]

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()


def null_progress(stage: str, fraction: float) -> None:
    """A progress function that does nothing."""
