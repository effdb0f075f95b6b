"""`score` with an unsupervised method and no checkpoint: fit on the scored videos plus the user's
library, and cache the fit by content so scoring the same set again does not refit.

Library: the folders/files given with `--library` (repeatable), else `$AVH_LIBRARY` (a list of
folders separated by the OS path separator, ':' on Linux). Folders are scanned recursively.

Cache: `<cache>/fits/<key>.safetensors` plus `<key>.json` (the manifest, written last), where
<cache> is $AVH_CACHE_DIR or ~/.cache/avhighlights. The key is the sha256 over the sorted video
content hashes, the method name and its resolved config, the extractor identities (name, version,
config, weights hash) and the seed; fits that differ only in their videos share a "setting".

Refit policy, for the wanted set W = scored videos + library and the cached fits F of the same
setting (first rule that applies):
1. `refit=True` (`--refit`): fit anew.
2. a fit with W a subset of F: reuse it (status "cached" when F == W, else "subset"; the smallest such F).
3. no fit sharing a video with W: fit anew.
4. the fit N sharing most videos with W (ties: the smaller, then the newer): its growth is
   |W - N| / |N|; above `refit_growth` (default 0.2 = 20 % more videos) fit anew, else score
   with N (status "nearest", with the number of unseen videos in the message and in fit.json).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avhighlights.core.atomic import write_json
from avhighlights.core.progress import ProgressFn
from avhighlights.core.registry import build_config, config_to_dict
from avhighlights.core.types import VideoInfo
from avhighlights.extractors.base import Extractor
from avhighlights.extractors.store import FeatureStore
from avhighlights.extractors.weights import cache_root
from avhighlights.models.base import METHODS
from avhighlights.pipeline.fit import find_videos, fit_infos, grid_overrides
from avhighlights.pipeline.probe import probe
from avhighlights.pipeline.progress import for_video, report_count
from avhighlights.pipeline.results import utc_now
from avhighlights.pipeline.run_config import AutoFit  # noqa: F401  (re-exported: the fit policy of `score`)

LIBRARY_ENV = "AVH_LIBRARY"
LIBRARY_STAGE = "probe library"
MANIFEST_FORMAT = "avhighlights-fit/1"
MANIFEST_KEYS = {"key", "setting", "checkpoint", "videos", "created_utc"}


StoreOpener = Callable[[], "FeatureStore | None"]  # the run's feature store, opened on the first call


@dataclass(frozen=True)
class FitUse:
    """Which fit scored the videos, and why."""

    status: str  # "fitted", "cached", "subset" or "nearest"
    checkpoint: Path
    key: str
    n_fitted: int  # videos in the fit
    n_wanted: int  # scored + library videos
    n_unseen: int  # wanted videos the fit did not see
    reason: str
    fit_seconds: float = 0.0
    library: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "checkpoint": str(self.checkpoint), "key": self.key,
                "n_fitted": self.n_fitted, "n_wanted": self.n_wanted, "n_unseen": self.n_unseen,
                "reason": self.reason, "fit_seconds": round(self.fit_seconds, 3), "library": list(self.library)}

    def message(self) -> str:
        return f"fit {self.status}: {self.reason} ({self.checkpoint})"


def library_paths(configured: Sequence[str]) -> tuple[str, ...]:
    """The configured library, else the folders in $AVH_LIBRARY (empty entries ignored)."""
    if configured:
        return tuple(configured)
    return tuple(p for p in os.environ.get(LIBRARY_ENV, "").split(os.pathsep) if p)


def fits_dir(explicit: str | None) -> Path:
    return Path(explicit) if explicit else cache_root() / "fits"


def _sha256_json(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def setting_identity(method: str, config: Mapping[str, Any], extractors: Mapping[str, Extractor],
                     seed: int) -> dict[str, Any]:
    """Everything a fit depends on besides its videos."""
    return {"method": method, "config": dict(config), "seed": seed,
            "extractors": {role: ex.identity() for role, ex in sorted(extractors.items())}}


def fit_key(video_sha256: Sequence[str], setting: Mapping[str, Any]) -> str:
    """The content key of a fit: sorted video hashes + setting."""
    return _sha256_json({"videos": sorted(set(video_sha256)), **setting})


def read_manifests(folder: Path, setting_hash: str) -> list[dict[str, Any]]:
    """Readable manifests of `folder` for this setting whose checkpoint exists."""
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if (isinstance(manifest, dict) and manifest.get("format") == MANIFEST_FORMAT
                and MANIFEST_KEYS <= manifest.keys() and manifest["setting"] == setting_hash
                and (folder / manifest["checkpoint"]).is_file()):
            found.append(manifest)
    return found


def choose_fit(manifests: Sequence[Mapping[str, Any]], wanted: set[str], auto: AutoFit
               ) -> tuple[Mapping[str, Any] | None, str, str]:
    """(manifest to reuse or None to fit, status, reason), by the policy of the module docstring."""
    if auto.refit:
        return None, "fitted", "refit requested"
    covering = [m for m in manifests if wanted <= set(m["videos"])]
    if covering:
        best = min(covering, key=lambda m: (len(m["videos"]), m["created_utc"]))
        exact = len(best["videos"]) == len(wanted)
        return best, ("cached" if exact else "subset"), f"all {len(wanted)} videos were in the fit"
    sharing = [m for m in manifests if wanted & set(m["videos"])]
    if not sharing:
        return None, "fitted", "no earlier fit of these videos with this method, config and extractors"
    nearest = max(sharing, key=lambda m: (len(wanted & set(m["videos"])), -len(m["videos"]), m["created_utc"]))
    unseen = len(wanted - set(nearest["videos"]))
    growth = unseen / len(nearest["videos"])
    if growth > auto.refit_growth:
        return None, "fitted", f"{unseen} new videos (+{growth:.0%} > refit growth {auto.refit_growth:.0%})"
    return nearest, "nearest", f"{unseen} of {len(wanted)} videos were not in the nearest fit " \
                               f"(+{growth:.0%} <= refit growth {auto.refit_growth:.0%})"


def _stat_key(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns, stat.st_ino]


def library_infos(library: Sequence[str], folder: Path, progress: ProgressFn | None = None) -> list[VideoInfo]:
    """Probed library videos. Probes (decode check + content hash) are remembered in
    `folder/library-index.json` by path, size, mtime and inode, so a large library is not re-read
    on every `score`; a new or changed file is probed (and a bad one fails here, naming it).
    Progress: "k/n files" on the stage `probe library`."""
    index_path = folder / "library-index.json"
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError):
        index = {}
    infos, changed = [], False
    paths = find_videos(library)
    for i, path in enumerate(paths):
        with for_video(progress, path):
            if i == 0:
                report_count(progress, LIBRARY_STAGE, 0, len(paths), "files")
            key, entry = str(path.resolve()), index.get(str(path.resolve()), {})
            if path.is_file() and entry.get("stat") == _stat_key(path):
                infos.append(VideoInfo.from_json(entry["info"]))
            else:
                infos.append(probe(path))
                index[key], changed = {"stat": _stat_key(path), "info": infos[-1].to_json()}, True
            report_count(progress, LIBRARY_STAGE, i + 1, len(paths), "files")
    if changed:
        write_json(index_path, index)
    return infos


def wanted_infos(infos: Sequence[VideoInfo], library: Sequence[str], folder: Path,
                 progress: ProgressFn | None = None) -> list[VideoInfo]:
    """Scored videos plus every library video, unique by content."""
    extra = library_infos(library, folder, progress) if library else []
    return list({info.sha256: info for info in [*infos, *extra]}.values())


def fit_or_reuse(method: str, method_overrides: Mapping[str, Any] | None, auto: AutoFit,
                 extractors: Mapping[str, Extractor], infos: Sequence[VideoInfo], store: StoreOpener,
                 progress: ProgressFn | None = None, device: str | None = None) -> FitUse:
    """The fit of unsupervised `method` reading `extractors` (role -> extractor) on `infos` + library: fitted now
    (on `device`) or reused from the cache by the policy of the module docstring. `store()` opens the run's feature
    store; it is called only to fit."""
    cls = METHODS.get(method)
    overrides = grid_overrides(method, method_overrides)
    setting = setting_identity(method, config_to_dict(build_config(cls.Config, overrides)), extractors, auto.seed)
    library = library_paths(auto.library)
    folder = fits_dir(auto.cache_dir)
    wanted = wanted_infos(infos, library, folder, progress)
    manifest, status, reason = choose_fit(read_manifests(folder, _sha256_json(setting)),
                                          {i.sha256 for i in wanted}, auto)
    if manifest is None:
        manifest, seconds = _fit_and_record(method, wanted, extractors, overrides, setting, folder, store(),
                                            auto.seed, progress, device)
    else:
        seconds = 0.0
    unseen = len({i.sha256 for i in wanted} - set(manifest["videos"]))
    return FitUse(status, folder / manifest["checkpoint"], manifest["key"], len(manifest["videos"]), len(wanted),
                  unseen, reason, seconds, library)


def _fit_and_record(method: str, infos: Sequence[VideoInfo], extractors: Mapping[str, Extractor],
                    overrides: Mapping[str, Any], setting: Mapping[str, Any], folder: Path,
                    store: FeatureStore | None, seed: int, progress: ProgressFn | None,
                    device: str | None) -> tuple[dict[str, Any], float]:
    """Fit on `infos`, write checkpoint then manifest (the manifest marks a complete entry)."""
    key = fit_key([i.sha256 for i in infos], setting)
    report = fit_infos(infos, method, extractors, folder / f"{key}.safetensors", overrides, store, seed, progress,
                       training_extra={"fit_key": key}, device=device)
    manifest = {"format": MANIFEST_FORMAT, "key": key, "setting": _sha256_json(setting), "method": method,
                "checkpoint": f"{key}.safetensors", "videos": sorted({i.sha256 for i in infos}),
                "paths": {i.sha256: str(i.path) for i in infos}, "seed": seed, "created_utc": utc_now(),
                "fit_seconds": round(report.seconds, 3)}
    write_json(folder / f"{key}.json", manifest)
    return manifest, report.seconds
