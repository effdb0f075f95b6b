"""The light path (`score --method loudness`) starts without the heavy libraries it never uses: torch and its
family, scikit-learn, scipy (the loudness method's running median is numpy), and PyAV until the report's stills are
taken (audio comes from ffmpeg).
Each check runs in a fresh interpreter, because this test session has imported them all long ago."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HEAVY = ("torch", "torchvision", "torchaudio", "timm", "sklearn", "scipy", "scipy.stats", "av")
REPO = Path(__file__).resolve().parents[1]

REPORT = f"""
import json, sys
print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))
"""


def _heavy_after(code: str, cwd: Path) -> list[str]:
    """The HEAVY modules loaded once `code` ran in a new interpreter (the repository's package first on the path)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run([sys.executable, "-c", code + REPORT], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_light_path_import_chain_loads_no_heavy_library(tmp_path: Path):
    code = """
import avhighlights.cli.main
import avhighlights.pipeline.batch, avhighlights.pipeline.run, avhighlights.pipeline.media, avhighlights.pipeline.plot
from avhighlights.extractors import EXTRACTORS, create_extractor
from avhighlights.models import METHODS, create_method
from avhighlights.pipeline.scorer import parse_scorer_source
from avhighlights.pipeline.run_config import ScorerSpec
assert "swin" in EXTRACTORS and "i3d" in EXTRACTORS.names() and "joint_va" in METHODS.names()
create_extractor("loudness", device="cpu")
create_method("loudness", {"loudness": 3})
assert parse_scorer_source(ScorerSpec(method="loudness")).kind == "fresh"
"""
    assert _heavy_after(code, tmp_path) == []


def test_a_real_loudness_score_run_loads_no_heavy_library(synthetic_video: Path, tmp_path: Path):
    out = tmp_path / "out"
    code = f"""
from avhighlights.cli.main import main
code = main(["score", {str(synthetic_video)!r}, "--method", "loudness", "--no-cache", "--no-clips", "--no-reel",
             "--out", {str(out)!r}, "--progress", "none"])
assert code == 0, code
"""
    assert _heavy_after(code, tmp_path) == ["av"]  # PyAV only for the report's stills (in-process, ~0.1 s)
    doc = json.loads(next(out.glob("*/highlights.json")).read_text())
    assert doc["method"] == "loudness" and doc["clips"] and len(doc["scores"]) == 20
    assert next(out.glob("*/scores.png")).stat().st_size > 0


def test_devices_resolve_on_first_use_and_a_bad_device_name_fails_when_any_extractor_is_built():
    """The other side of the lazy device: a weight-free extractor resolves it when asked; a misspelt name is refused
    when any extractor is built (ConfigError, exit 2), checked without torch."""
    import torch

    from avhighlights.core.devices import check_device_name
    from avhighlights.core.errors import ConfigError
    from avhighlights.extractors import create_extractor

    assert create_extractor("loudness", device="cpu").device == torch.device("cpu")
    for name in ("cpu", "cuda", "cuda:1", "mps", "xpu:0"):
        assert check_device_name(name) == name and torch.device(name).type == name.split(":")[0]
    for extractor, overrides in (("loudness", {}), ("logmel", {}), ("mobilenet_v1_025", {"random_init": True})):
        for bad in ("not_a_device", "cdua", "cuda:x", "gpu", ""):
            with pytest.raises(ConfigError, match="unknown device"):
                create_extractor(extractor, overrides, device=bad)


def test_cli_refuses_a_misspelt_device_before_any_work(tmp_path, capsys):
    from avhighlights.cli.main import main

    with pytest.raises(SystemExit) as caught:
        main(["score", str(tmp_path / "absent.mp4"), "--method", "loudness", "--device", "cdua"])
    assert caught.value.code == 2 and "unknown device 'cdua'" in capsys.readouterr().err


@pytest.mark.parametrize("length", [0, 1, 2, 7, 50, 3001])
@pytest.mark.parametrize("window", [1, 3, 31, 101])
def test_the_numpy_running_median_equals_scipys_median_filter_exactly(length: int, window: int, monkeypatch):
    from scipy.ndimage import median_filter

    from avhighlights.models import baselines

    monkeypatch.setattr(baselines, "MEDIAN_CHUNK_VALUES", 997)  # several chunks, one of them partial
    rng = np.random.default_rng(length * 1000 + window)
    values = np.round(rng.normal(-30.0, 12.0, length), 1)  # rounded: ties, as dBFS rows have
    values[rng.random(length) < 0.2] = -100.0  # the extractor's silence floor
    expected = median_filter(values, size=window, mode="nearest")
    assert np.array_equal(baselines.running_median(values, window), expected)


def test_the_running_median_refuses_an_even_window():
    from avhighlights.models.baselines import running_median

    with pytest.raises(ValueError, match="odd window"):
        running_median(np.zeros(4), 4)


def test_the_cli_makes_openmp_threads_wait_passively_unless_the_user_chose(monkeypatch, tmp_path, capsys):
    import os

    from avhighlights.cli.main import main

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert main(["info", str(tmp_path / "absent.mp4")]) == 3  # any command; set before its work starts
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    main(["info", str(tmp_path / "absent.mp4")])
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    capsys.readouterr()
