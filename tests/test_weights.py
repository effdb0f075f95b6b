"""Weight registry: resolution order, offline errors, hash checks, local HTTP download, hash caching."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import threading
from pathlib import Path

import pytest
import torch

from avhighlights.core.errors import CheckpointError, WeightsHashError, WeightsNotFoundError
from avhighlights.extractors import weights as W

PAYLOAD = b"fake weights " * 1000
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Isolated cache / weights dirs and a fresh registry entry."""
    monkeypatch.setenv("AVH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("AVH_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("AVH_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(W, "WEIGHTS", {})
    return tmp_path


def _spec(url="http://127.0.0.1:9/none.bin", sha=PAYLOAD_SHA) -> W.WeightSpec:
    return W.register_weights(W.WeightSpec(name="toy", filename="toy.bin", url=url, sha256=sha))


def test_explicit_path_wins_over_env_and_cache(env, monkeypatch):
    _spec()
    for folder in ("explicit", "envdir", "cache/weights"):
        (env / folder).mkdir(parents=True)
        (env / folder / "toy.bin").write_bytes(PAYLOAD)
    monkeypatch.setenv("AVH_WEIGHTS_DIR", str(env / "envdir"))
    assert W.resolve_weights("toy", env / "explicit" / "toy.bin") == env / "explicit" / "toy.bin"
    assert W.resolve_weights("toy") == env / "envdir" / "toy.bin"
    monkeypatch.delenv("AVH_WEIGHTS_DIR")
    assert W.resolve_weights("toy") == env / "cache" / "weights" / "toy.bin"


def test_offline_error_names_file_url_and_folder(env, monkeypatch):
    _spec(url="https://example.org/toy.bin")
    monkeypatch.setenv("AVH_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError) as info:
        W.resolve_weights("toy")
    message = str(info.value)
    assert "toy.bin" in message and "https://example.org/toy.bin" in message
    assert str(env / "cache" / "weights") in message


def test_hf_offline_and_explicit_flag(env, monkeypatch):
    _spec()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert W.is_offline() is True
    assert W.is_offline(False) is False
    with pytest.raises(WeightsNotFoundError):
        W.resolve_weights("toy")


def test_hash_mismatch_raises(env):
    _spec(sha="0" * 64)
    (env / "bad.bin").write_bytes(PAYLOAD)
    with pytest.raises(WeightsHashError, match="bad.bin"):
        W.resolve_weights("toy", env / "bad.bin")


def test_unverified_spec_accepts_any_file(env):
    _spec(sha=None)
    (env / "any.bin").write_bytes(b"xyz")
    assert W.resolve_weights("toy", env / "any.bin") == env / "any.bin"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def http_root(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_from_local_server(env, http_root):
    root, base = http_root
    (root / "toy.bin").write_bytes(PAYLOAD)
    _spec(url=f"{base}/toy.bin")
    path = W.resolve_weights("toy", progress=False)
    assert path == env / "cache" / "weights" / "toy.bin"
    assert path.read_bytes() == PAYLOAD
    assert json.loads((path.parent / "toy.bin.sha256").read_text())["sha256"] == PAYLOAD_SHA
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".part")] == []


def test_download_with_wrong_hash_leaves_nothing(env, http_root):
    root, base = http_root
    (root / "toy.bin").write_bytes(PAYLOAD)
    _spec(url=f"{base}/toy.bin", sha="f" * 64)
    with pytest.raises(WeightsHashError):
        W.resolve_weights("toy", progress=False)
    assert not (env / "cache" / "weights" / "toy.bin").exists()


def test_network_failure_is_not_found(env, http_root):
    _, base = http_root
    _spec(url=f"{base}/missing.bin")  # 404
    with pytest.raises(WeightsNotFoundError, match="missing.bin"):
        W.resolve_weights("toy", progress=False)


def test_hash_cache_skips_rehash_until_file_changes(env, monkeypatch):
    target = env / "w.bin"
    target.write_bytes(PAYLOAD)
    assert W.cached_sha256(target) == PAYLOAD_SHA
    calls = []
    monkeypatch.setattr(W, "file_sha256", lambda p: calls.append(p) or "recomputed")
    assert W.cached_sha256(target) == PAYLOAD_SHA and calls == []
    target.write_bytes(PAYLOAD + b"!")
    os.utime(target, ns=(1, 1))
    assert W.cached_sha256(target) == "recomputed" and len(calls) == 1


def test_load_state_dict_formats(tmp_path):
    from safetensors.torch import save_file

    tensors = {"a.weight": torch.arange(6.0).reshape(2, 3)}
    save_file(tensors, str(tmp_path / "x.safetensors"))
    torch.save({"model": tensors, "epoch": 3}, tmp_path / "x.pth")
    torch.save({"state_dict": tensors}, tmp_path / "y.pt")
    for name in ("x.safetensors", "x.pth", "y.pt"):
        loaded = W.load_state_dict(tmp_path / name)
        assert list(loaded) == ["a.weight"] and torch.equal(loaded["a.weight"], tensors["a.weight"])
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        W.load_state_dict(tmp_path / "junk.pt")


def test_file_sha256_matches_hashlib(tmp_path):
    (tmp_path / "f").write_bytes(PAYLOAD)
    assert W.file_sha256(tmp_path / "f") == PAYLOAD_SHA
    assert Path(W.weights_cache_dir()).name == "weights"
