"""Pretrained-weight registry and resolution: explicit path -> $AVH_WEIGHTS_DIR -> user cache -> download.

Downloads stream to a temporary file next to the cache entry, are sha256-checked and renamed atomically.
Verified hashes are cached in a `<file>.sha256` sidecar keyed by size and mtime, so large files are hashed once.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch

from avhighlights.atomic import atomic_path, write_json
from avhighlights.errors import CheckpointError, RegistryError, WeightsHashError, WeightsNotFoundError

HASH_CHUNK_BYTES = 1 << 20
DOWNLOAD_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class WeightSpec:
    """Where a pretrained weights file comes from and how to check it (sha256 None = unverified)."""

    name: str
    filename: str
    url: str
    sha256: str | None = None
    size_bytes: int | None = None
    licence: str = "unknown"
    source: str = ""
    notes: str = ""

    @property
    def verified(self) -> bool:
        return self.sha256 is not None


WEIGHTS: dict[str, WeightSpec] = {}


def register_weights(spec: WeightSpec) -> WeightSpec:
    """Add `spec` to the registry (re-registering the same spec is a no-op)."""
    existing = WEIGHTS.get(spec.name)
    if existing is not None and existing != spec:
        raise RegistryError(f"weights {spec.name!r} are already registered with a different spec")
    WEIGHTS[spec.name] = spec
    return spec


def get_weight_spec(name: str) -> WeightSpec:
    if name not in WEIGHTS:
        raise RegistryError(f"unknown weights {name!r}; registered: {', '.join(sorted(WEIGHTS)) or 'none'}")
    return WEIGHTS[name]


def cache_root() -> Path:
    """`$AVH_CACHE_DIR` or ~/.cache/avhighlights."""
    return Path(os.environ.get("AVH_CACHE_DIR", Path.home() / ".cache" / "avhighlights")).expanduser()


def weights_cache_dir() -> Path:
    return cache_root() / "weights"


def is_offline(offline: bool | None = None) -> bool:
    """Explicit flag, else $AVH_OFFLINE=1 or $HF_HUB_OFFLINE=1."""
    if offline is not None:
        return offline
    flags = (os.environ.get(var, "").strip().lower() for var in ("AVH_OFFLINE", "HF_HUB_OFFLINE"))
    return any(flag in ("1", "true", "yes") for flag in flags)


# ----------------------------------------------------------------------------------------------- hashing
def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's content, read in 1-MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(HASH_CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _stat_key(path: Path) -> dict:
    stat = path.stat()
    return {"size_bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def cached_sha256(path: str | Path) -> str:
    """sha256 of `path`, reusing the sidecar when size and mtime are unchanged (and writing it otherwise)."""
    path = Path(path)
    key = _stat_key(path)
    sidecar = _sidecar(path)
    try:
        record = json.loads(sidecar.read_text())
        if {k: record.get(k) for k in key} == key and isinstance(record.get("sha256"), str):
            return record["sha256"]
    except (OSError, ValueError):
        pass
    digest = file_sha256(path)
    try:
        write_json(sidecar, {**key, "sha256": digest})
    except OSError:
        pass  # read-only folder (e.g. shared weights): just do not cache
    return digest


def verify_file(path: Path, spec: WeightSpec) -> Path:
    """Raise `WeightsHashError` when `path` does not match the spec's sha256 (unverified specs pass)."""
    if spec.sha256 is None:
        return path
    actual = cached_sha256(path)
    if actual != spec.sha256.lower():
        raise WeightsHashError(
            f"{path}: sha256 {actual} does not match the expected {spec.sha256} for weights {spec.name!r}; "
            f"delete the file and download it again from {spec.url}"
        )
    return path


# ----------------------------------------------------------------------------------------------- resolution
def local_candidates(spec: WeightSpec) -> list[Path]:
    """Places searched before downloading, in order."""
    places = []
    if os.environ.get("AVH_WEIGHTS_DIR"):
        places.append(Path(os.environ["AVH_WEIGHTS_DIR"]).expanduser() / spec.filename)
    places.append(weights_cache_dir() / spec.filename)
    return places


def resolve_weights(name: str, path: str | Path | None = None, *, offline: bool | None = None,
                    progress: bool = True) -> Path:
    """Local path of the weights `name`: explicit `path`, $AVH_WEIGHTS_DIR, the user cache, else download."""
    spec = get_weight_spec(name)
    if path is not None:
        explicit = Path(path).expanduser()
        if not explicit.is_file():
            raise WeightsNotFoundError(f"{explicit}: weights file for {name!r} does not exist")
        return verify_file(explicit, spec)
    for candidate in local_candidates(spec):
        if candidate.is_file():
            return verify_file(candidate, spec)
    target = weights_cache_dir() / spec.filename
    if is_offline(offline):
        raise WeightsNotFoundError(_missing_message(spec, target, "offline mode is on"))
    return download_weights(spec, target, progress=progress)


def _missing_message(spec: WeightSpec, target: Path, why: str) -> str:
    hash_note = f"sha256 {spec.sha256}" if spec.sha256 else "sha256 unverified"
    return (
        f"{spec.filename}: weights {spec.name!r} not found locally and not downloaded ({why}). "
        f"Download {spec.url} ({hash_note}) and put it in {target.parent} "
        f"(or in $AVH_WEIGHTS_DIR, or pass an explicit weights_path)."
    )


def download_weights(spec: WeightSpec, target: Path, *, progress: bool = True) -> Path:
    """Stream `spec.url` to `target` atomically, checking the sha256 before the rename."""
    try:
        with atomic_path(target) as tmp:
            digest = _stream_to(spec.url, tmp, progress=progress, label=spec.filename)
            if spec.sha256 is not None and digest != spec.sha256.lower():
                raise WeightsHashError(
                    f"{spec.filename}: downloaded from {spec.url} with sha256 {digest}, expected {spec.sha256}"
                )
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise WeightsNotFoundError(_missing_message(spec, target, f"download failed: {exc}")) from exc
    write_json(_sidecar(target), {**_stat_key(target), "sha256": digest})
    return target


def _stream_to(url: str, out_path: Path, *, progress: bool, label: str) -> str:
    from tqdm.auto import tqdm

    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(out_path, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=label, disable=not progress) as bar:
            for block in iter(lambda: response.read(HASH_CHUNK_BYTES), b""):
                out.write(block)
                digest.update(block)
                bar.update(len(block))
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------- loading
CONTAINER_KEYS = ("state_dict", "model", "model_state_dict")


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint: safetensors by suffix, else `torch.load(weights_only=True)` on CPU,
    unwrapping a {"state_dict"|"model"|"model_state_dict": {...}} container."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file becomes a typed error
        raise CheckpointError(f"{path}: cannot read weights ({type(exc).__name__}: {exc})") from exc
    return _unwrap(loaded, path)


def _unwrap(loaded: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(loaded, dict):
        for key in CONTAINER_KEYS:
            if isinstance(loaded.get(key), dict):
                loaded = loaded[key]
                break
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise CheckpointError(f"{path}: not a state dict of tensors")
    return dict(loaded)


def weights_identity(name: str, path: str | Path | None, random_init: bool, seed: int) -> str:
    """What an extractor's output depends on: "random-init:<seed>", the registered sha256, or the file's hash."""
    if random_init:
        return f"random-init:{seed}"
    spec = get_weight_spec(name)
    if spec.sha256 is not None:
        return spec.sha256
    return cached_sha256(resolve_weights(name, path))
