"""Fixtures shared by test_fit.py and test_fit_cli.py: tiny distinct synthetic videos, one feature
store for all fits (so each video's features are computed once), and tiny method configs."""

from __future__ import annotations

from pathlib import Path

import pytest

BINDING = {"visual": "logmel", "audio": "loudness"}  # weight-free extractors, CPU friendly
TINY_RECURRENCE = {"d_model": 16, "heads": 2, "fc_hidden": 8, "epochs": 2, "batch_size": 2}
TINY_RASL = {"epochs": 1, "k": 3, "batch_size": 4}


def _spec(i: int):
    from avhighlights.pipeline.synth import SyntheticSpec

    return SyntheticSpec(duration_s=5.0 + i, width=96, height=64, fps=10, scene_len_s=2.0,
                         event_times_s=(1.0 + i % 3,), event_len_s=1.0)


@pytest.fixture(scope="session")
def tiny_videos(tmp_path_factory) -> list[Path]:
    """Five short, distinct videos (5-9 s, 96x64, 10 fps): a0, a1, a2 in library/, b3 in extra/more/ and b4
    in extra/. Made once per session under the base temp folder (shared by every module importing this)."""
    from avhighlights.pipeline.synth import make_synthetic_video

    root = tmp_path_factory.getbasetemp() / "fit_videos"
    places = [root / "library" / "a0.mp4", root / "library" / "a1.mp4", root / "library" / "a2.mkv",
              root / "extra" / "more" / "b3.mp4", root / "extra" / "b4.mp4"]
    for i, path in enumerate(places):
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            make_synthetic_video(path, _spec(i))
    return places


@pytest.fixture(scope="session")
def fit_store(tmp_path_factory) -> str:
    """One feature store folder shared by every fit test, so each video's features are computed once."""
    return str(tmp_path_factory.getbasetemp() / "fit_store")
