"""Pretrained-weight registry and resolution: explicit path -> search folders -> user cache -> download.

Search folders, in order: those given with `--weights-dir` (the CLI prepends them to $AVH_WEIGHTS_DIR for the run,
see `weights_search_path`), then each folder of $AVH_WEIGHTS_DIR (several separated by the OS path separator, ':'
on Linux). Each is searched recursively, so a folder of per-model sub-folders works. Then the user cache
(`weights_cache_dir()`), where downloads and `avhighlights weights import` put files.

Downloads (pooch) go to a temporary file next to the cache entry, are sha256-checked and renamed atomically.
Verified hashes are cached in a `<file>.sha256` sidecar keyed by size and mtime, so large files are hashed once.
Some loaders read a conversion of what was published (a TF archive turned into a torch state dict): their spec
names the published artefact, its own sha256 and the conversion separately (`WeightSpec.converted_from`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from avhighlights.core.atomic import atomic_path, write_json
from avhighlights.core.errors import CheckpointError, RegistryError, WeightsHashError, WeightsNotFoundError

HASH_CHUNK_BYTES = 1 << 20
DOWNLOAD_TIMEOUT_S = 60.0
WEIGHTS_DIR_ENV = "AVH_WEIGHTS_DIR"

if TYPE_CHECKING:  # torch is imported by the loaders below, not by whoever only looks weights up
    import torch


@dataclass(frozen=True)
class PublishedArtefact:
    """What was actually published when the loader reads a conversion of it: its URL, its own sha256 (None when
    the publisher gives none) and the steps that turn it into the loader's file."""

    url: str
    sha256: str | None
    convert: str


@dataclass(frozen=True)
class Preprocess:
    """The input a network's published weights expect (as torchvision's weights carry their transforms): RGB scaled
    to [0, 1], then (x - mean) / std per channel, at `image_size` (the side of the square the network sees)."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    image_size: int


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
    converted_from: PublishedArtefact | None = None  # set when `url` is not the loader's file itself
    manual: bool = False  # `url` is a web page (e.g. a Google Drive folder): the file is fetched by hand
    preprocess: Preprocess | None = None  # for networks: the input the weights expect

    @property
    def downloadable(self) -> bool:
        """True when `url` serves the loader's file itself (not an archive to convert, not a web page)."""
        return bool(self.url) and self.converted_from is None and not self.manual

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
        origin = (f"convert it again from {spec.converted_from.url}" if spec.converted_from is not None
                  else f"download it again from {spec.url}")
        raise WeightsHashError(
            f"{path}: sha256 {actual} does not match the expected {spec.sha256} for weights {spec.name!r} "
            f"({spec.filename}); delete the file and {origin}, or import a good copy with `avhighlights weights import`"
        )
    return path


# ----------------------------------------------------------------------------------------------- resolution
def search_dirs() -> list[Path]:
    """The folders searched recursively before the cache: each entry of $AVH_WEIGHTS_DIR, in order."""
    raw = os.environ.get(WEIGHTS_DIR_ENV, "")
    return [Path(part).expanduser() for part in raw.split(os.pathsep) if part.strip()]


@contextmanager
def weights_search_path(dirs: Sequence[str | Path]) -> Iterator[None]:
    """Prepend `dirs` to $AVH_WEIGHTS_DIR inside the block (`--weights-dir`; subprocesses inherit it)."""
    if not dirs:
        yield
        return
    previous = os.environ.get(WEIGHTS_DIR_ENV)
    parts = [str(Path(d).expanduser()) for d in dirs] + ([previous] if previous else [])
    os.environ[WEIGHTS_DIR_ENV] = os.pathsep.join(parts)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(WEIGHTS_DIR_ENV, None)
        else:
            os.environ[WEIGHTS_DIR_ENV] = previous


def find_in_dir(folder: Path, filename: str) -> Path | None:
    """`folder/filename`, else the first (sorted) `filename` anywhere below `folder`; None when absent."""
    direct = folder / filename
    if direct.is_file():
        return direct
    if not folder.is_dir():
        return None
    return next((p for p in sorted(folder.rglob(filename)) if p.is_file()), None)


def lookup(spec: WeightSpec) -> list[tuple[Path, Path | None]]:
    """(folder, file found there or None) for every place searched, in search order; the cache comes last."""
    places = [(folder, find_in_dir(folder, spec.filename)) for folder in search_dirs()]
    cached = weights_cache_dir() / spec.filename
    return [*places, (weights_cache_dir(), cached if cached.is_file() else None)]


def local_candidates(spec: WeightSpec) -> list[Path]:
    """Files found locally for `spec`, in search order."""
    return [found for _, found in lookup(spec) if found is not None]


def resolve_weights(name: str, path: str | Path | None = None, *, offline: bool | None = None,
                    progress: bool = True) -> Path:
    """Local path of the weights `name`: explicit `path`, the search folders, the user cache, else download."""
    spec = get_weight_spec(name)
    if path is not None:
        explicit = Path(path).expanduser()
        if not explicit.is_file():
            raise WeightsNotFoundError(f"{explicit}: weights file for {name!r} does not exist")
        return verify_file(explicit, spec)
    for candidate in local_candidates(spec):
        return verify_file(candidate, spec)
    target = weights_cache_dir() / spec.filename
    if not spec.downloadable:
        raise WeightsNotFoundError(missing_message(spec, "it is not published as a file that can be downloaded"))
    if is_offline(offline):
        raise WeightsNotFoundError(missing_message(spec, "offline mode is on"))
    return download_weights(spec, target, progress=progress)


def missing_message(spec: WeightSpec, why: str) -> str:
    """One paragraph: which file is missing, why, where it was looked for and how to provide it."""
    folders = ", ".join(str(folder) for folder, _ in lookup(spec))
    where = (f"Looked in {folders}. Put it in {weights_cache_dir()} with `avhighlights weights import FILE`, "
             f"or in a folder given by --weights-dir / $AVH_WEIGHTS_DIR (searched recursively), or pass weights_path.")
    head = f"{spec.filename}: weights {spec.name!r} not found locally and not downloaded ({why})."
    if spec.converted_from is not None:
        art = spec.converted_from
        art_hash = f"sha256 {art.sha256}" if art.sha256 else "no sha256 published"
        got = f"sha256 {spec.sha256}" if spec.sha256 else "unverified"
        return (f"{head} The loader reads a converted file: the published artefact is {art.url} ({art_hash}), "
                f"converted by: {art.convert}. The converted {spec.filename} has {got}. {where}")
    hash_note = f"sha256 {spec.sha256}" if spec.sha256 else "sha256 unverified"
    source = f"Download {spec.url} ({hash_note})" if spec.url else f"Get it ({hash_note})"
    if spec.manual:
        source = f"Fetch it by hand from {spec.url} ({hash_note})"
    return f"{head} {source}. {where}"


def download_weights(spec: WeightSpec, target: Path, *, progress: bool = True) -> Path:
    """Download `spec.url` to `target` with pooch (temporary file, sha256 check, atomic rename)."""
    import pooch
    import requests

    pooch.get_logger().setLevel("WARNING")
    target.parent.mkdir(parents=True, exist_ok=True)
    known = f"sha256:{spec.sha256.lower()}" if spec.sha256 else None
    try:
        pooch.retrieve(spec.url, known_hash=known, fname=target.name, path=target.parent, progressbar=progress,
                       downloader=pooch.HTTPDownloader(progressbar=progress, timeout=DOWNLOAD_TIMEOUT_S))
    except ValueError as exc:  # pooch's hash mismatch
        raise WeightsHashError(f"{spec.filename}: downloaded from {spec.url}, but {exc}") from exc
    except (requests.RequestException, OSError) as exc:
        raise WeightsNotFoundError(missing_message(spec, f"download failed: {exc}")) from exc
    digest = spec.sha256.lower() if spec.sha256 else file_sha256(target)
    write_json(_sidecar(target), {**_stat_key(target), "sha256": digest})
    return target


def import_weights(source: str | Path, names: Sequence[str] | None = None) -> tuple[WeightSpec, Path]:
    """Identify `source` (a path or a file:// URL) among the specs `names` (default: all registered) by its sha256
    and copy it atomically into the cache under the name the loader looks for. A file matching no verified spec is
    accepted only for an unverified spec of the same file name (or the only unverified one among `names`);
    otherwise `WeightsHashError` lists the expected hashes. Returns (spec, cached path)."""
    if str(source).startswith("file://"):  # a local URL, e.g. copied from a browser's downloads list
        from urllib.parse import unquote, urlparse

        source = unquote(urlparse(str(source)).path)
    source = Path(source).expanduser()
    if not source.is_file():
        raise WeightsNotFoundError(f"{source}: no such file to import")
    specs = [get_weight_spec(n) for n in names] if names is not None else list(WEIGHTS.values())
    digest = file_sha256(source)
    spec = next((s for s in specs if s.sha256 is not None and s.sha256.lower() == digest), None)
    if spec is None:
        spec = _unverified_match(source, specs)
    if spec is None:
        raise WeightsHashError(_refusal(source, digest, specs))
    target = weights_cache_dir() / spec.filename
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    write_json(_sidecar(target), {**_stat_key(target), "sha256": digest})
    return spec, target


def _unverified_match(source: Path, specs: Sequence[WeightSpec]) -> WeightSpec | None:
    unverified = [s for s in specs if s.sha256 is None]
    same_name = [s for s in unverified if s.filename == source.name]
    if same_name:
        return same_name[0]
    return unverified[0] if len(unverified) == 1 and len(specs) == 1 else None


def _refusal(source: Path, digest: str, specs: Sequence[WeightSpec]) -> str:
    same_name = [s for s in specs if s.filename == source.name] or list(specs)
    expected = "; ".join(f"{s.filename} ({s.name}): {s.sha256 or 'unverified'}" for s in same_name)
    return f"{source}: sha256 {digest} matches no known weights file; expected {expected}"


# ----------------------------------------------------------------------------------------------- loading
CONTAINER_KEYS = ("state_dict", "model", "model_state_dict")


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint: safetensors by suffix, else `torch.load(weights_only=True)` on CPU,
    unwrapping a {"state_dict"|"model"|"model_state_dict": {...}} container."""
    import torch

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
    import torch

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
