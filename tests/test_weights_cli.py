"""Weights a user can provide: recursive search folders, --weights-dir, `weights list` and `weights import`, and
missing-file messages whose hashes belong to the files they name. Real files from ../shared/weights (skipped
when absent) and tiny fake files for mismatches."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from avhighlights.cli.main import main
from avhighlights.core.errors import WeightsNotFoundError
from avhighlights.extractors import EXTRACTORS
from avhighlights.extractors import weights as W
from avhighlights.extractors.efficientat import MN04_WEIGHTS
from avhighlights.extractors.mobilenet_v1 import MOBILENET_V1_025


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("AVH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("AVH_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("AVH_OFFLINE", "1")
    return tmp_path


def _real(shared_weights_dir, folder, spec):
    path = shared_weights_dir / folder / spec.filename
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path


def test_weights_dir_env_is_searched_recursively(env, monkeypatch, shared_weights_dir):
    mobilenet = _real(shared_weights_dir, "mobilenet_v1_025_imagenet", MOBILENET_V1_025)
    mn04 = _real(shared_weights_dir, "efficientat_mn04_as", MN04_WEIGHTS)
    monkeypatch.setenv("AVH_WEIGHTS_DIR", os.pathsep.join([str(env / "empty"), str(shared_weights_dir)]))
    assert W.resolve_weights(MOBILENET_V1_025.name) == mobilenet  # found in a per-model sub-folder
    assert W.resolve_weights(MN04_WEIGHTS.name) == mn04
    folders = [folder for folder, _ in W.lookup(MOBILENET_V1_025)]
    assert folders == [env / "empty", shared_weights_dir, env / "cache" / "weights"]


def test_list_json_with_weights_dir(env, capsys, shared_weights_dir):
    mobilenet = _real(shared_weights_dir, "mobilenet_v1_025_imagenet", MOBILENET_V1_025)
    assert main(["weights", "list", "--json", "--verify", "--weights-dir", str(shared_weights_dir)]) == 0
    assert "AVH_WEIGHTS_DIR" not in os.environ  # --weights-dir lasts for the command only
    report = {item["extractor"]: item["files"] for item in json.loads(capsys.readouterr().out)}
    assert set(report) == set(EXTRACTORS.names())
    assert report["loudness"] == []
    [pt, classes] = report["mobilenet_v1_025"]
    assert pt["found"] == str(mobilenet) and pt["hash_ok"] is True and classes["hash_ok"] is True
    assert [p["folder"] for p in pt["searched"]] == [str(shared_weights_dir), str(env / "cache" / "weights")]
    assert pt["sha256"] == MOBILENET_V1_025.sha256 and pt["url"] is None
    assert pt["converted_from"]["sha256"] != pt["sha256"]  # the published artefact has its own hash
    panns = report["panns_cnn14_16k"][0]
    assert panns["found"] is None and panns["url"].startswith("https://zenodo.org/") and panns["sha256"] is None


def test_list_text_names_missing_files(env, capsys):
    assert main(["weights", "list", "--extractor", "efficientat_mn04"]) == 0
    text = capsys.readouterr().out
    assert "mn04_as_mAP_432.pt" in text and "NOT FOUND" in text and MN04_WEIGHTS.sha256 in text
    assert str(env / "cache" / "weights") in text


def test_import_real_file_places_it_where_the_loader_looks(env, capsys, shared_weights_dir):
    source = _real(shared_weights_dir, "efficientat_mn04_as", MN04_WEIGHTS)
    assert main(["weights", "import", str(source)]) == 0
    target = env / "cache" / "weights" / MN04_WEIGHTS.filename
    assert target.read_bytes() == source.read_bytes()
    assert "efficientat_mn04_as" in capsys.readouterr().out
    assert W.resolve_weights(MN04_WEIGHTS.name) == target  # offline, no search folder: the cache has it
    assert [p.name for p in target.parent.iterdir() if p.name.endswith(".part")] == []


def test_import_identifies_by_hash_not_by_name(env, shared_weights_dir, tmp_path):
    """A renamed download, given as a file:// URL, is recognised by its sha256."""
    source = _real(shared_weights_dir, "mobilenet_v1_025_imagenet", MOBILENET_V1_025)
    renamed = tmp_path / "downloaded.bin"
    renamed.write_bytes(source.read_bytes())
    assert main(["weights", "import", renamed.as_uri(), "--extractor", "mobilenet_v1_025"]) == 0  # file:// URL
    assert (env / "cache" / "weights" / MOBILENET_V1_025.filename).read_bytes() == source.read_bytes()


def test_import_refuses_unknown_hash_listing_the_expected_one(env, capsys, tmp_path):
    fake = tmp_path / MOBILENET_V1_025.filename
    fake.write_bytes(b"not the weights")
    assert main(["weights", "import", str(fake)]) == 4
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert hashlib.sha256(b"not the weights").hexdigest() in err and MOBILENET_V1_025.sha256 in err
    assert not (env / "cache" / "weights" / MOBILENET_V1_025.filename).exists()


def test_import_unverified_file_by_its_name(env, tmp_path, monkeypatch):
    monkeypatch.setattr(W, "WEIGHTS", {})
    spec = W.register_weights(W.WeightSpec(name="toy", filename="toy.pth", url="https://example.org/toy.pth"))
    (tmp_path / "toy.pth").write_bytes(b"toy")
    got, target = W.import_weights(tmp_path / "toy.pth")
    assert got == spec and target.read_bytes() == b"toy"


def test_missing_converted_file_names_both_hashes(env):
    with pytest.raises(WeightsNotFoundError) as info:
        W.resolve_weights(MOBILENET_V1_025.name)
    message, art = str(info.value), MOBILENET_V1_025.converted_from
    assert info.value.exit_code == 4
    assert MOBILENET_V1_025.filename in message and art.url in message and art.sha256 in message
    assert f"has sha256 {MOBILENET_V1_025.sha256}" in message  # the converted file's own hash, stated separately
    assert ".tgz (sha256" not in message and "Download" not in message  # no hash pinned on the wrong file
    assert "weights import" in message and str(env / "cache" / "weights") in message


def test_offline_download_error_names_file_url_and_folders(env, monkeypatch):
    monkeypatch.setenv("AVH_WEIGHTS_DIR", str(env / "mine"))
    with pytest.raises(WeightsNotFoundError) as info:
        W.resolve_weights(MN04_WEIGHTS.name)
    message = str(info.value)
    assert MN04_WEIGHTS.filename in message and MN04_WEIGHTS.url in message and MN04_WEIGHTS.sha256 in message
    assert str(env / "mine") in message and str(env / "cache" / "weights") in message
