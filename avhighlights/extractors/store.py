"""Content-addressed feature store.

Key = sha256 of canonical JSON {video sha256, extractor name, version, resolved config, weights
sha256}. Entry layout: `<root>/<key[:2]>/<key>/{features.npy, spans.npy, manifest.json}`. The
manifest is written last and is the commit marker; it records dim, hop_s, start, shape, dtype, the
sha256 of every other file of the entry and a sha256 of itself, all checked on read. A corrupt or
half-written entry is detected, removed and recomputed by `get_or_compute`. Local roots use a
per-key `flock` so two processes computing the same key produce one intact entry; any fsspec URL
(s3://, memory://, ...) works as a root for a store shared between machines (manifest-last,
identical content last-writer-wins).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from avhighlights import __version__
from avhighlights.core.errors import FeatureStoreError
from avhighlights.core.timebase import FeatureTrack, Spans
from avhighlights.extractors.base import Extractor

if TYPE_CHECKING:  # fsspec is imported when a store is opened: --no-cache runs never load it
    import fsspec

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
FEATURES = "features.npy"
SPANS = "spans.npy"
ARRAYS = (FEATURES, SPANS)
MANIFEST_SHA256 = "manifest_sha256"
READ_ONLY_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


def default_store_root() -> str:
    """$AVH_FEATURE_STORE, else `<cache>/features` under $AVH_CACHE_DIR or ~/.cache/avhighlights."""
    if os.environ.get("AVH_FEATURE_STORE"):
        return os.environ["AVH_FEATURE_STORE"]
    cache = os.environ.get("AVH_CACHE_DIR", str(Path.home() / ".cache" / "avhighlights"))
    return str(Path(cache) / "features")


def entry_key(video_sha256: str, identity: dict[str, Any]) -> str:
    """The cache key: everything the features depend on."""
    blob = json.dumps({"video_sha256": video_sha256, **identity}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class EntryInfo:
    key: str
    manifest: dict[str, Any]
    size_bytes: int


@dataclass
class VerifyReport:
    checked: int = 0
    corrupt: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


class FeatureStore:
    """Features per (video content, extractor identity); see the module docstring."""

    def __init__(self, root: str | Path | None = None, create: bool = True):
        """`create=False` (inspection and maintenance) refuses a local root that does not exist."""
        import fsspec

        root = str(root or default_store_root())
        try:
            self.fs, self.root = fsspec.core.url_to_fs(root)
        except (ValueError, ImportError) as exc:  # "Protocol not known: foo", or its package is not installed
            raise FeatureStoreError(f"{root}: cannot open the feature store ({exc})") from None
        self.local = "file" in _protocols(self.fs)
        self.url = root
        if self.local:
            _open_local_root(Path(self.root), create)

    def key_for(self, video_sha256: str, extractor: Extractor) -> str:
        return entry_key(video_sha256, extractor.identity())

    def _dir(self, key: str) -> str:
        return f"{self.root.rstrip('/')}/{key[:2]}/{key}"

    def get(self, key: str) -> FeatureTrack | None:
        """The stored track, None when absent; raises FeatureStoreError when the entry is corrupt."""
        folder = self._dir(key)
        if not self.fs.exists(f"{folder}/{MANIFEST}"):
            return None
        try:
            manifest = json.loads(self.fs.cat_file(f"{folder}/{MANIFEST}"))
            blobs = {name: self.fs.cat_file(f"{folder}/{name}") for name in ARRAYS}
        except (OSError, ValueError) as exc:
            raise FeatureStoreError(f"{folder}: unreadable entry ({exc})") from None
        _check_checksums(folder, manifest, blobs)
        try:
            values = np.load(io.BytesIO(blobs[FEATURES]), allow_pickle=False)
            spans = np.load(io.BytesIO(blobs[SPANS]), allow_pickle=False)
            self._check(folder, manifest, values, spans)
            return FeatureTrack(values, Spans(spans[0], spans[1]), manifest["identity"]["extractor"])
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise FeatureStoreError(f"{folder}: corrupt entry ({exc})") from None

    @staticmethod
    def _check(folder: str, manifest: dict, values: np.ndarray, spans: np.ndarray) -> None:
        problems = []
        if list(values.shape) != manifest.get("shape") or str(values.dtype) != manifest.get("dtype"):
            problems.append(f"array {values.shape} {values.dtype} != manifest {manifest.get('shape')}")
        if values.ndim != 2 or values.shape[1] != manifest.get("dim") or spans.shape != (2, values.shape[0]):
            problems.append("dim/spans do not match the manifest")
        if problems:
            raise FeatureStoreError(f"{folder}: corrupt entry: {'; '.join(problems)}")

    def put(self, key: str, track: FeatureTrack, identity: dict[str, Any], video_sha256: str) -> None:
        """Store `track` under `key`; the manifest is written last (commit marker)."""
        values = np.ascontiguousarray(track.values, dtype=np.float32)
        data = _npy_bytes(values)
        spans = np.stack([track.spans.start_s, track.spans.end_s]).astype(np.float64)
        manifest = {
            "key": key, "video_sha256": video_sha256, "identity": identity, "dim": int(values.shape[1]),
            "hop_s": _hop_s(track.spans), "start_s": float(spans[0, 0]) if values.shape[0] else 0.0,
            "shape": list(values.shape), "dtype": str(values.dtype), "sha256": _sha256(data),
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "tool_version": __version__,
        }
        files = {FEATURES: data, SPANS: _npy_bytes(spans)}
        manifest["files_sha256"] = {name: _sha256(blob) for name, blob in files.items()}
        manifest[MANIFEST_SHA256] = _manifest_sha256(manifest)
        files[MANIFEST] = json.dumps(manifest, indent=1).encode()
        try:
            (self._put_local if self.local else self._put_remote)(key, files)
        except OSError as exc:  # read-only, full, permission denied, ... (remote backends raise OSErrors too)
            raise FeatureStoreError(f"{self.url}: cannot store features ({_os_reason(exc)})") from None

    def _put_local(self, key: str, files: dict[str, bytes]) -> None:
        final = Path(self._dir(key))
        staging = final.with_name(f"{key}.tmp-{uuid.uuid4().hex}")
        staging.mkdir(parents=True)
        try:
            for name in (FEATURES, SPANS, MANIFEST):
                (staging / name).write_bytes(files[name])
                with open(staging / name, "rb") as handle:
                    os.fsync(handle.fileno())
            self._replace_dir(staging, final)
        finally:
            if staging.exists():
                _rmtree(staging)

    @staticmethod
    def _replace_dir(staging: Path, final: Path) -> None:
        if final.exists():
            trash = final.with_name(f"{final.name}.old-{uuid.uuid4().hex}")
            os.replace(final, trash)
            _rmtree(trash)
        os.replace(staging, final)

    def _put_remote(self, key: str, files: dict[str, bytes]) -> None:
        folder = self._dir(key)
        for name in (FEATURES, SPANS, MANIFEST):
            self.fs.pipe_file(f"{folder}/{name}", files[name])

    def remove(self, key: str) -> None:
        folder = self._dir(key)
        try:
            if self.fs.exists(folder):
                self.fs.rm(folder, recursive=True)
        except OSError as exc:
            raise FeatureStoreError(f"{folder}: cannot remove the entry ({_os_reason(exc)})") from None

    @contextlib.contextmanager
    def _lock(self, key: str) -> Iterator[bool]:
        """Hold the key's lock; yields whether the store can be written (False: a read-only local store)."""
        if not self.local:
            yield True
            return
        handle = _open_lock(Path(self.root) / key[:2] / f"{key}.lock")
        if handle is None:  # read-only: entries appear by rename, so reading needs no lock
            yield False
            return
        with handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield True
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def get_or_compute(self, video_sha256: str, extractor: Extractor,
                       compute: Callable[[], FeatureTrack]) -> tuple[FeatureTrack, bool]:
        """The cached track (hit=True), or `compute()` stored and returned (hit=False). A read-only
        store serves its hits; a miss there raises FeatureStoreError before computing anything."""
        key = self.key_for(video_sha256, extractor)
        with self._lock(key) as writable:
            cached = self._get_or_discard(key) if writable else self.get(key)
            if cached is not None:
                return cached, True
            if not writable:
                raise FeatureStoreError(f"{self.url}: the feature store is read-only and has no {extractor.name} "
                                        f"features of video {video_sha256[:12]} (score without the cache, or use "
                                        "a writable store)")
            track = compute()
            self.put(key, track, extractor.identity(), video_sha256)
            return track, False

    def _get_or_discard(self, key: str) -> FeatureTrack | None:
        try:
            return self.get(key)
        except FeatureStoreError as exc:
            log.warning("%s; recomputing", exc)
            self.remove(key)
            return None

    def keys(self) -> Iterator[str]:
        for path in sorted(self.fs.glob(f"{self.root.rstrip('/')}/*/*/{MANIFEST}")):
            yield path.rstrip("/").split("/")[-2]

    def entries(self) -> Iterator[EntryInfo]:
        for key in self.keys():
            folder = self._dir(key)
            try:
                manifest = json.loads(self.fs.cat_file(f"{folder}/{MANIFEST}"))
            except (OSError, json.JSONDecodeError):
                manifest = {}
            size = sum(self.fs.size(p) for p in self.fs.ls(folder, detail=False))
            yield EntryInfo(key, manifest, int(size))

    def verify(self, remove_corrupt: bool = False) -> VerifyReport:
        report = VerifyReport()
        for key in list(self.keys()):
            report.checked += 1
            try:
                self.get(key)
            except FeatureStoreError as exc:
                report.corrupt.append(f"{key}: {exc}")
                if remove_corrupt:
                    self.remove(key)
                    report.removed.append(key)
        return report

    def prune(self, older_than_s: float | None = None, extractor: str | None = None,
              dry_run: bool = False) -> list[str]:
        """Remove entries older than `older_than_s` and/or of one extractor; returns their keys."""
        now = time.time()
        chosen = []
        for entry in self.entries():
            created = _parse_utc(entry.manifest.get("created_utc"))
            too_old = older_than_s is None or created is None or now - created > older_than_s
            same_ex = extractor is None or entry.manifest.get("identity", {}).get("extractor") == extractor
            if too_old and same_ex:
                chosen.append(entry.key)
        if not dry_run:
            for key in chosen:
                self.remove(key)
        return chosen


def _open_local_root(root: Path, create: bool) -> None:
    """The store folder, created when `create`; a read-only existing folder is fine (hits are served)."""
    if root.exists() and not root.is_dir():
        raise FeatureStoreError(f"{root}: the feature store location exists and is not a folder")
    if not create:
        if not root.is_dir():
            raise FeatureStoreError(f"{root}: no feature store here (folder not found)")
        return
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FeatureStoreError(f"{root}: cannot create the feature store folder ({_os_reason(exc)})") from None


def _open_lock(lock_path: Path):
    """The lock file opened for flock, or None when the store is read-only."""
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        return open(lock_path, "a+")  # closed by the caller's `with`
    except OSError as exc:
        if exc.errno in READ_ONLY_ERRNOS:
            return None
        raise FeatureStoreError(f"{lock_path}: cannot open the lock file ({_os_reason(exc)})") from None


def _os_reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _manifest_sha256(manifest: dict[str, Any]) -> str:
    """Checksum of the manifest itself: its canonical JSON without the checksum field."""
    body = {k: v for k, v in manifest.items() if k != MANIFEST_SHA256}
    return _sha256(json.dumps(body, sort_keys=True, default=str).encode())


def _check_checksums(folder: str, manifest: Any, blobs: dict[str, bytes]) -> None:
    """Every file of the entry against the manifest's checksums, and the manifest against its own."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files_sha256"), dict):
        raise FeatureStoreError(f"{folder}: corrupt entry: the manifest has no checksums of its files "
                                "(damaged, or written by an older avhighlights)")
    problems = [f"{MANIFEST} checksum mismatch"] if manifest.get(MANIFEST_SHA256) != _manifest_sha256(manifest) else []
    problems += [f"{name} checksum mismatch" for name, blob in blobs.items()
                 if manifest["files_sha256"].get(name) != _sha256(blob)]
    if problems:
        raise FeatureStoreError(f"{folder}: corrupt entry: {'; '.join(problems)}")


def _protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)


def _hop_s(spans: Spans) -> float | None:
    return float(spans.start_s[1] - spans.start_s[0]) if len(spans) > 1 else None


def _parse_utc(text: str | None) -> float | None:
    if not text:
        return None
    import calendar

    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
