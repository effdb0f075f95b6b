#!/usr/bin/env bash
# One-time set-up on a fresh Debian/Ubuntu machine with Python 3.11: ffmpeg from the distribution,
# then this package with its pinned dependencies (and the test/orchestration extras).
# Safe to re-run: every step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
    echo "setup: installing ffmpeg (Debian package)" >&2
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq ffmpeg >/dev/null
fi

PYTHON=${PYTHON:-python3}
stamp=".setup-stamp"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)-$($PYTHON -c 'import sys; print(sys.prefix)')"
# Imported from / (not from this folder, where `import avhighlights` always works): the installed package must
# be this checkout, not another clone's editable install.
installed="$(cd / && $PYTHON -c 'import torch, decord, prefect, avhighlights; print(avhighlights.__file__)' 2>/dev/null || true)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [ "$installed" != "$PWD/avhighlights/__init__.py" ]; then
    echo "setup: installing avhighlights and its dependencies (first run: several minutes)" >&2
    $PYTHON -m pip install -q --disable-pip-version-check -e ".[dev]"
    echo "$want" > "$stamp"
fi
