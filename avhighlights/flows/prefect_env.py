"""Defaults for the Prefect settings of the server a command may start, applied before Prefect is imported.

Without PREFECT_API_URL a flow run (`avhighlights reprocess`, `serve`) starts Prefect's ephemeral server, a
uvicorn subprocess on 127.0.0.1. With Prefect's own defaults that server sends anonymous usage telemetry to
Prefect's servers, and the client gives up after 20 s of start-up (a traceback on a loaded machine). The
handlers of `reprocess`, `serve` and `watch` call `apply_prefect_defaults()` first; a value already in the
environment wins. Only os and typing are imported here.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

PREFECT_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
}


def apply_prefect_defaults(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set each of PREFECT_DEFAULTS that `environ` (default os.environ) lacks; returns what was set."""
    environ = os.environ if environ is None else environ
    applied = {name: value for name, value in PREFECT_DEFAULTS.items() if name not in environ}
    environ.update(applied)
    return applied
