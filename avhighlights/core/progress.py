"""The progress callback every long-running library call accepts: `progress(stage, fraction_done)`."""

from __future__ import annotations

from collections.abc import Callable

ProgressFn = Callable[[str, float], None]
