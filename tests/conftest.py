"""Shared fixtures: the shared data root (skipped cleanly when absent) and synthetic videos."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]

torch.set_num_threads(1)


def _data_root() -> Path:
    return Path(os.environ.get("AVH_DATA_ROOT", REPO_ROOT.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def data_root() -> Path:
    """../shared/data, or $AVH_DATA_ROOT; tests that use it are skipped when it is absent."""
    root = _data_root()
    if not root.is_dir():
        pytest.skip(f"shared data not found at {root} (set AVH_DATA_ROOT)")
    return root


@pytest.fixture(scope="session")
def media_dir(data_root: Path) -> Path:
    media = data_root / "media"
    if not media.is_dir():
        pytest.skip(f"no media clips under {data_root}")
    return media


@pytest.fixture(scope="session")
def shared_weights_dir() -> Path:
    weights = REPO_ROOT.parent / "shared" / "weights"
    if not weights.is_dir():
        pytest.skip(f"shared weights not found at {weights}")
    return weights


@pytest.fixture(scope="session")
def synthetic_video(tmp_path_factory) -> Path:
    """A 20-s 320x240 H.264/AAC video: scene changes every 5 s, loud tone bursts at 3, 11 and 16 s."""
    from avhighlights.pipeline.synth import SyntheticSpec, make_synthetic_video

    return make_synthetic_video(tmp_path_factory.mktemp("synth") / "events.mp4", SyntheticSpec())


@pytest.fixture(scope="session")
def short_video(tmp_path_factory) -> Path:
    """A 6-s 160x120 10-fps H.264/AAC video: scene changes every 2 s, tone bursts at 1 and 4 s. For tests whose
    claim does not depend on the content (orchestration, caching, resuming): scoring and writing it costs less
    than half of `synthetic_video` (fewer clips, fewer ffmpeg runs)."""
    from avhighlights.pipeline.synth import SyntheticSpec, make_synthetic_video

    spec = SyntheticSpec(duration_s=6.0, width=160, height=120, fps=10, scene_len_s=2.0, event_times_s=(1.0, 4.0),
                         event_len_s=1.0)
    return make_synthetic_video(tmp_path_factory.mktemp("synth") / "short.mp4", spec)


@pytest.fixture(scope="session")
def silent_video(tmp_path_factory) -> Path:
    """A 6-s video without an audio track."""
    from avhighlights.pipeline.synth import SyntheticSpec, make_synthetic_video

    return make_synthetic_video(tmp_path_factory.mktemp("synth") / "no audio.mkv",
                                SyntheticSpec(duration_s=6.0, with_audio=False))


@pytest.fixture(scope="session")
def prefect_server():
    """A real Prefect server on loopback (temporary SQLite); yields its API URL and sets
    PREFECT_API_URL for subprocesses. Started once per session (~20 s); see tests/prefect_fixtures.py."""
    from prefect_fixtures import running_prefect_server

    with running_prefect_server() as url:
        yield url
