"""The default unsupervised fits on real clips with the small real extractors (MobileNet-v1 0.25 + EfficientAT
mn04, real weights from the shared folder): neither the default `recurrence` (recipe `ours`) nor the default
`rasl` collapses, and the scores they give rank the seconds (issue #14)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from avhighlights.pipeline.fit import fit_on_videos

BINDING = {"visual": "mobilenet_v1_025", "audio": "efficientat_mn04"}
CLIPS = {"tears_of_steel_battle_action_70s.webm": 20.0, "bbb_animation_music_30s.webm": 8.0,
         "autoeditor_speech_then_silence_42s.mp4": 10.0}
CUT_S = 8.0


@pytest.fixture(scope="module")
def real_cuts(media_dir, tmp_path_factory) -> list[Path]:
    """8-s cuts (re-encoded, small) of three shared clips of different content."""
    media = media_dir
    out = tmp_path_factory.mktemp("real_cuts")
    cuts = []
    for name, start_s in CLIPS.items():
        if not (media / name).is_file():
            pytest.skip(f"{media / name} not found")
        cut = out / f"{Path(name).stem}_cut.mp4"
        subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-ss", str(start_s), "-t", str(CUT_S), "-i",
                        str(media / name), "-vf", "scale=320:-2", "-c:v", "libx264", "-preset", "ultrafast",
                        "-c:a", "aac", str(cut)], check=True)
        cuts.append(cut)
    return cuts


@pytest.fixture
def real_weights(shared_weights_dir, monkeypatch):
    for folder in ("mobilenet_v1_025_imagenet", "efficientat_mn04_as"):
        if not (shared_weights_dir / folder).is_dir():
            pytest.skip(f"{shared_weights_dir / folder} not found")
    monkeypatch.setenv("AVH_WEIGHTS_DIR", str(shared_weights_dir))


def test_default_recurrence_fit_on_real_clips_does_not_collapse(real_cuts, real_weights, tmp_path):
    report = fit_on_videos(real_cuts, "recurrence", tmp_path / "rec.safetensors", binding_overrides=BINDING,
                           store=str(tmp_path / "store"), seed=0)
    assert report.config["recipe"] == "ours"
    assert report.training["attempts"] == [0.0] and report.near_constant_fraction == 0.0
    assert report.training["near_constant_on_train"] == 0.0 and np.isfinite(report.training["train_loss"]).all()
    assert report.training["epochs"] == 20 and report.training["lr"] == 5e-4


@pytest.mark.slow
def test_default_rasl_fit_on_real_clips_does_not_collapse(real_cuts, real_weights, tmp_path):
    report = fit_on_videos(real_cuts, "rasl", tmp_path / "rasl.safetensors", binding_overrides=BINDING,
                           method_overrides={"epochs": 3}, store=str(tmp_path / "store"), seed=0)
    assert report.training["attempts"] == [0.0] and report.near_constant_fraction == 0.0
    assert np.isfinite(report.training["history"][-1]["total"])
