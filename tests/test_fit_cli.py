"""`avhighlights fit` and the fitting options of `avhighlights score`: fit -> checkpoint -> score,
on-the-fly fits with a cache hit, --bind, refusals and exit codes (run in-process through main())."""

# ruff: noqa: F811  (test parameters shadow the imported fixtures)
from __future__ import annotations

import json
from pathlib import Path

import pytest
from fit_fixtures import BINDING, TINY_RECURRENCE, fit_store, tiny_videos  # noqa: F401 (fixtures)

from avhighlights.cli.fit import parse_overrides, parse_pairs
from avhighlights.cli.main import main
from avhighlights.core.errors import ConfigError

BIND_ARGS = [arg for role, name in BINDING.items() for arg in ("--bind", f"{role}={name}")]
SET_ARGS = [arg for key, value in TINY_RECURRENCE.items() for arg in ("--set", f"{key}={value}")]
QUIET = ["--progress", "none"]


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch) -> Path:
    """Fits cached on the fly go to tmp_path/cache/fits; no $AVH_LIBRARY from the environment."""
    monkeypatch.setenv("AVH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("AVH_LIBRARY", raising=False)
    return tmp_path / "cache"


def _last_error(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("avhighlights: error:"), lines
    return lines[0]


def test_pair_parsing():
    assert parse_pairs(["visual=logmel", " audio = loudness "], "--bind") == BINDING
    assert parse_overrides(["epochs=2", "modalities=[\"visual\"]", "ph_mode=av"]) == {
        "epochs": 2, "modalities": ["visual"], "ph_mode": "av"}
    with pytest.raises(ConfigError, match="--bind expects KEY=VALUE"):
        parse_pairs(["visual"], "--bind")


def test_fit_then_score_with_the_checkpoint(tiny_videos, fit_store, tmp_path: Path, capsys):
    ckpt = tmp_path / "models" / "rec.safetensors"
    code = main(["fit", "--method", "recurrence", "--videos", str(tiny_videos[0].parent), "--videos",
                 str(tiny_videos[4]), "--out", str(ckpt), "--store", fit_store, "--seed", "1", *BIND_ARGS,
                 *SET_ARGS, *QUIET])
    assert code == 0 and ckpt.is_file()
    assert "fitted recurrence on 4 videos" in capsys.readouterr().out
    out = tmp_path / "out"
    assert main(["score", str(tiny_videos[3]), "--checkpoint", str(ckpt), "--out", str(out), "--store", fit_store,
                 "--no-reel", *QUIET]) == 0
    doc = json.loads((out / tiny_videos[3].stem / "highlights.json").read_text())
    assert doc["method"] == "recurrence" and doc["checkpoint"] == str(ckpt) and len(doc["scores"]) == 8
    assert doc["clips"] and not (out / tiny_videos[3].stem / "fit.json").exists()
    capsys.readouterr()  # this tiny 2-epoch fit may collapse: a flat-score warning line is then printed
    assert main(["score", str(tiny_videos[3]), "--checkpoint", str(ckpt), "--bind", "audio=logmel", "--out",
                 str(tmp_path / "out2"), *QUIET]) == 5
    assert "extractor mismatch" in _last_error(capsys) and not (tmp_path / "out2").exists()


def test_score_without_checkpoint_fits_once_and_then_hits_the_cache(tiny_videos, fit_store, tmp_path: Path,
                                                                    private_cache: Path):
    args = ["score", *map(str, tiny_videos[:2]), "--method", "recurrence", "--library", str(tiny_videos[4].parent),
            "--store", fit_store, "--no-clips", "--no-reel", *BIND_ARGS, *SET_ARGS, *QUIET]
    assert main([*args, "--out", str(tmp_path / "o1")]) == 0
    first = json.loads((tmp_path / "o1" / tiny_videos[0].stem / "fit.json").read_text())
    assert first["status"] == "fitted" and first["n_fitted"] == 4  # a0, a1 + the library extra/ (b3, b4)
    fitted_files = sorted(private_cache.joinpath("fits").iterdir())
    assert main([*args, "--out", str(tmp_path / "o2")]) == 0
    second = json.loads((tmp_path / "o2" / tiny_videos[1].stem / "fit.json").read_text())
    assert second["status"] == "cached" and second["key"] == first["key"]
    assert sorted(private_cache.joinpath("fits").iterdir()) == fitted_files  # nothing refitted
    doc = json.loads((tmp_path / "o2" / tiny_videos[1].stem / "highlights.json").read_text())
    assert doc["checkpoint"] == first["checkpoint"]


def test_supervised_method_is_refused_with_a_pointer_to_bench(tiny_videos, tmp_path: Path, capsys):
    code = main(["fit", "--method", "joint_va", "--videos", str(tiny_videos[0]), "--out", str(tmp_path / "x"),
                 *BIND_ARGS, *QUIET])
    assert code == 2 and "avhighlights bench" in _last_error(capsys)


def test_uninstalled_extractor_names_the_bind_option(tiny_videos, tmp_path: Path, capsys):
    code = main(["fit", "--method", "rasl", "--videos", str(tiny_videos[0]), "--out", str(tmp_path / "x"),
                 "--bind", "visual=no_such_extractor", *QUIET])
    assert code == 2 and "--bind visual=EXTRACTOR" in _last_error(capsys)


def test_bad_video_exits_3_naming_the_file_and_writes_nothing(tiny_videos, tmp_path: Path, capsys):
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "zz_truncated.mp4").write_bytes(tiny_videos[0].read_bytes()[:2000])
    out, store = tmp_path / "ckpt" / "rec.safetensors", tmp_path / "store"
    code = main(["fit", "--method", "recurrence", "--videos", str(tiny_videos[0]), "--videos", str(folder),
                 "--out", str(out), "--store", str(store), *BIND_ARGS, *QUIET])
    assert code == 3 and "zz_truncated.mp4" in _last_error(capsys)
    assert not out.parent.exists() and not store.exists()
