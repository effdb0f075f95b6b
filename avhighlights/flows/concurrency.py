"""Concurrency, retry and timeout policy shared by the flows.

GPU work: extractor tasks that run on CUDA are tagged `gpu` and hold one slot of the global
concurrency limit `gpu` while they compute, so at most N tasks use the GPU at once across every
worker talking to the same server. Create the limit once per server:

    prefect gcl create gpu --limit 1          # or ensure_gpu_limit(1) from Python

Without the limit the slot request is a no-op (Prefect logs a warning), so CPU-only installs need
nothing. Retries (with exponential backoff) cover transient failures only (OSError, timeouts);
typed input errors such as MediaError fail the task at once with their message.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectNotFound
from prefect.task_engine import TaskRunTimeoutError
from prefect.tasks import exponential_backoff

from avhighlights.core.errors import AVHighlightsError

GPU_LIMIT = "gpu"
GPU_TAG = "gpu"
RETRIES = 2
RETRY_DELAYS_S = exponential_backoff(backoff_factor=2)(RETRIES)  # [2, 4] s


@dataclass(frozen=True)
class Timeouts:
    """Per-task timeouts in seconds, read from $AVH_TIMEOUT_<NAME>_S when the flow starts."""

    probe: float = 600.0
    extract: float = 3 * 3600.0
    fit: float = 3 * 3600.0
    score: float = 1800.0
    select: float = 120.0
    write: float = 3600.0

    @classmethod
    def from_env(cls) -> Timeouts:
        defaults = cls()
        return cls(**{name: float(os.environ.get(f"AVH_TIMEOUT_{name.upper()}_S", getattr(defaults, name)))
                      for name in cls.__dataclass_fields__})


def is_transient(exc: BaseException | None) -> bool:
    """Worth retrying: I/O and network-timeout errors that are not one of our typed (deterministic)
    errors. A task that ran past its own `timeout_seconds` is not retried: its time budget is spent."""
    deterministic = isinstance(exc, AVHighlightsError | TaskRunTimeoutError)
    return isinstance(exc, OSError | TimeoutError) and not deterministic


def retry_transient(task, task_run, state) -> bool:
    """Prefect `retry_condition_fn`: retry only when the failure is transient."""
    try:
        state.result()
    except BaseException as exc:  # noqa: BLE001 - we classify whatever the task raised
        return is_transient(exc)
    return False


@contextlib.contextmanager
def gpu_slot(device_type: str) -> Iterator[None]:
    """Hold one `gpu` slot while a CUDA extractor runs; a no-op on CPU."""
    if device_type != "cuda":
        yield
        return
    with concurrency(GPU_LIMIT, occupy=1):
        yield


def ensure_gpu_limit(slots: int, name: str = GPU_LIMIT) -> int:
    """Create (or resize) the global concurrency limit `name` with `slots` slots; returns the limit."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=slots))
        else:
            client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=slots))
        return client.read_global_concurrency_limit_by_name(name).limit
