"""Output folders: checked before any work starts, and write failures reported as `OutputError` (exit 8).

`prepare_output_dir` creates the folder and proves it writable by creating a file in it, which also
catches read-only mounts when running as root (root ignores permission bits, not `ro`).
`writing_to(folder)` wraps the code that writes into the folder: an OSError that is about the
location (no space, quota, read-only, permission, a parent that is a file) and ffmpeg reporting a
full disk become one `OutputError` line naming the folder, instead of a traceback or a
"bad media" error naming the input.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from avhighlights.core.errors import OutputError
from avhighlights.pipeline.cuts import RenderError

LOCATION_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM,
                             errno.ENOTDIR, errno.EEXIST, errno.EISDIR})
FFMPEG_FULL_DISK = tuple(os.strerror(code) for code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG))


def output_error(folder: str | Path, exc: OSError) -> OutputError:
    """One line naming the folder and what the OS said."""
    reason = exc.strerror or str(exc)
    detail = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(folder) else ""
    return OutputError(f"{folder}: cannot write the output folder: {reason}{detail}")


def prepare_output_dir(folder: str | Path) -> Path:
    """Create `folder` (and its parents) and check that a file can be created in it."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: the output location exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(prefix=".avh-write-check-", dir=folder):
            pass
    except OSError as exc:
        raise output_error(folder, exc) from None
    return folder


@contextlib.contextmanager
def writing_to(folder: str | Path) -> Iterator[None]:
    """Turn location failures while writing into `folder` into `OutputError`; anything else propagates."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in LOCATION_ERRNOS:
            raise
        raise output_error(folder, exc) from None
    except RenderError as exc:
        full = next((text for text in FFMPEG_FULL_DISK if text in exc.reason), None)
        if full is None:
            raise
        what = exc.reason.split(": ", 1)[0]  # "ffmpeg could not write reel.mp4"
        raise OutputError(f"{folder}: cannot write the output folder: {full} ({what})") from None
