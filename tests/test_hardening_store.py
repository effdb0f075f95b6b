"""Every file of a feature-store entry is under the manifest's checksums (issue #16, case 1).

A flipped byte in spans.npy used to crash `score` and `store verify --remove-corrupt` (spans with
end < start), or was used silently when the flipped value was still valid."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avhighlights.cli.main import main
from avhighlights.core.errors import FeatureStoreError
from avhighlights.core.timebase import FeatureTrack
from avhighlights.extractors.base import create_extractor
from avhighlights.extractors.store import FeatureStore

VIDEO_KEY = "v" * 64


def _track(n: int = 5) -> FeatureTrack:
    return FeatureTrack.regular(np.arange(n * 2, dtype=np.float32).reshape(n, 2), 1.0, name="loudness")


def _entry(root: Path) -> tuple[FeatureStore, str, Path]:
    store = FeatureStore(root)
    extractor = create_extractor("loudness")
    store.get_or_compute(VIDEO_KEY, extractor, _track)
    key = store.key_for(VIDEO_KEY, extractor)
    return store, key, root / key[:2] / key


def _flip_span_byte(folder: Path, index: int, mask: int) -> np.ndarray:
    """XOR the most significant byte of float number `index` of spans.npy with `mask`; returns the new spans."""
    path = folder / "spans.npy"
    data = bytearray(path.read_bytes())
    offset = len(data) - np.load(path).nbytes + 8 * index + 7  # little-endian float64: byte 7 holds sign/exponent
    data[offset] ^= mask
    path.write_bytes(bytes(data))
    return np.load(path)


@pytest.mark.parametrize("mask, valid", [(0x3F, False), (0x40, True)], ids=["end-before-start", "valid-but-wrong"])
def test_flipped_span_byte_is_a_corrupt_entry(tmp_path: Path, mask: int, valid: bool):
    store, key, folder = _entry(tmp_path)
    spans = _flip_span_byte(folder, index=2, mask=mask)
    assert bool(np.all(spans[1] >= spans[0])) == valid  # both kinds of damage are exercised
    with pytest.raises(FeatureStoreError, match="spans.npy checksum mismatch"):
        store.get(key)
    report = store.verify()
    assert report.checked == 1 and len(report.corrupt) == 1 and "spans.npy" in report.corrupt[0]


def test_get_or_compute_warns_once_and_recomputes_a_bad_spans_file(tmp_path: Path, caplog):
    store, key, folder = _entry(tmp_path)
    _flip_span_byte(folder, index=2, mask=0x3F)
    calls = []
    with caplog.at_level(logging.WARNING, logger="avhighlights.extractors.store"):
        track, hit = store.get_or_compute(VIDEO_KEY, create_extractor("loudness"),
                                          lambda: calls.append(1) or _track())
    assert not hit and calls == [1]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0] and "spans.npy checksum mismatch" in warnings[0]
    np.testing.assert_array_equal(store.get(key).spans.end_s, _track().spans.end_s)


def test_store_verify_cli_removes_an_entry_with_a_bad_spans_file(tmp_path: Path, capsys):
    store, key, folder = _entry(tmp_path)
    _flip_span_byte(folder, index=2, mask=0x3F)
    assert main(["store", "verify", "--store", str(tmp_path)]) == 6
    assert f"corrupt: {key}" in capsys.readouterr().out
    assert main(["store", "verify", "--store", str(tmp_path), "--remove-corrupt"]) == 0
    assert "1 corrupt, 1 removed" in capsys.readouterr().out
    assert list(store.keys()) == [] and not folder.exists()


def test_edited_manifest_fails_its_own_checksum(tmp_path: Path):
    store, key, folder = _entry(tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["start_s"] = 7.0  # a field no other check looks at
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(FeatureStoreError, match="manifest.json checksum mismatch"):
        store.get(key)


@pytest.mark.parametrize("content", ["[1, 2]", '{"shape": [5, 2]}'], ids=["not-an-object", "no-checksums"])
def test_manifest_without_file_checksums_is_corrupt(tmp_path: Path, content: str):
    store, key, folder = _entry(tmp_path)
    (folder / "manifest.json").write_text(content)
    with pytest.raises(FeatureStoreError, match="no checksums of its files"):
        store.get(key)


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory) -> Path:
    from avhighlights.pipeline.synth import SyntheticSpec, make_synthetic_video

    return make_synthetic_video(tmp_path_factory.mktemp("tiny") / "tiny.mp4",
                                SyntheticSpec(duration_s=4.0, width=160, height=120, event_times_s=(1.0,)))


def test_score_recomputes_a_corrupt_entry_in_process(tiny_video: Path, tmp_path: Path):
    """`score` (the shared decode pass first asks the store what is missing) treats a corrupt entry as missing:
    it is recomputed, not an error."""
    store_root, out = tmp_path / "store", tmp_path / "out"
    args = ["score", str(tiny_video), "--method", "loudness", "--out", str(out), "--store", str(store_root),
            "--progress", "none", "--no-clips"]
    assert main(args) == 0
    (folder,) = [p.parent for p in store_root.glob("*/*/manifest.json")]
    _flip_span_byte(folder, index=3, mask=0x3F)
    assert FeatureStore(store_root).verify().corrupt != []
    assert main(args) == 0
    assert FeatureStore(store_root).verify().corrupt == []


@pytest.mark.slow  # ~12 s (a subprocess); test_score_recomputes_a_corrupt_entry_in_process covers it in-process
def test_score_cli_recomputes_a_bad_spans_file_with_a_one_line_warning(tiny_video: Path, tmp_path: Path):
    store_root, out = tmp_path / "store", tmp_path / "out"
    args = ["score", str(tiny_video), "--method", "loudness", "--out", str(out), "--store", str(store_root),
            "--progress", "none", "--no-clips"]
    assert main(args) == 0
    (folder,) = [p.parent for p in store_root.glob("*/*/manifest.json")]
    _flip_span_byte(folder, index=3, mask=0x3F)  # start of second 3 becomes ~5e303 > its end
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    rerun = subprocess.run([sys.executable, "-m", "avhighlights", *args], capture_output=True, text=True,
                           timeout=300, env=env)
    assert rerun.returncode == 0, rerun.stderr
    lines = rerun.stderr.strip().splitlines()
    assert len(lines) == 1 and "spans.npy checksum mismatch" in lines[0] and "recomputing" in lines[0]
    assert FeatureStore(store_root).verify().corrupt == []
