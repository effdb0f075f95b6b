"""The `bench` harness: one method on one dataset protocol over several seeds, with exact split
ids, per-group numbers per seed, their mean and std, written atomically as JSON + markdown.

For each seed and split: build the method (`create_method`), `fit(train, val, seed)` when it is
trainable (labels stripped for unsupervised methods), `predict` on the test videos (always with
labels stripped), then the protocol's metrics against the real labels.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import platform
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avhighlights import __version__
from avhighlights.core.atomic import write_json, write_text
from avhighlights.core.errors import ConfigError
from avhighlights.core.progress import ProgressFn
from avhighlights.core.registry import build_config, config_to_dict
from avhighlights.core.sample import Sample
from avhighlights.evaluation import (  # noqa: F401  (registration)
    folder_data,
    general_data,
    mrhisum_data,
    protocol_cross_dataset,
    protocol_random_split,
    tvsum_data,
    tvsum_videos_data,
    youtube_data,
)
from avhighlights.evaluation.bench_checkpoints import (
    COLLAPSED_KEY,
    CheckpointSaver,
    checkpoint_summary,
    load_for_dataset,
)
from avhighlights.evaluation.datasets import DATASETS, UMT_SOURCE_OPTIONS, Dataset, Split, UMTDataset
from avhighlights.evaluation.protocols import PROTOCOLS, BenchProtocol
from avhighlights.evaluation.report import markdown_report, summarise
from avhighlights.models.base import (  # noqa: F401  (collapsed_fraction re-exported)
    METHODS,
    HighlightMethod,
    collapsed_fraction,
    create_method,
)
from avhighlights.models.checkpoint import CheckpointInfo
from avhighlights.models.torch_method import set_seed

BASE_SEEDS = (42, 123, 456, 777, 999)
METHOD_MODULES = ("avhighlights.models", "avhighlights.models.baselines")


def seed_list(n: int) -> list[int]:
    """The first n of (42, 123, 456, 777, 999, then 1000 + i)."""
    if n < 1:
        raise ConfigError(f"--seeds must be at least 1, got {n}")
    return [BASE_SEEDS[i] if i < len(BASE_SEEDS) else 1000 + i for i in range(n)]


@dataclass
class BenchResult:
    """Everything a bench run measured; `to_json` is what result.json holds."""

    config: dict[str, Any]
    seeds: list[int]
    notes: str
    splits: dict[str, list[dict]]
    per_seed: dict[int, dict[str, dict[str, float]]]
    summary: dict
    wall_s: float
    machine: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    fit_reports: dict[str, dict[str, dict]] = field(default_factory=dict)  # seed -> split -> method.fit's report
    json_path: Path | None = None
    markdown_path: Path | None = None

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key in ("json_path", "markdown_path"):
            data.pop(key)
        data["per_seed"] = {str(s): runs for s, runs in self.per_seed.items()}
        return data


def load_method_modules() -> None:
    """Import the modules that register methods (the package plus the reference baselines)."""
    for module in METHOD_MODULES:
        importlib.import_module(module)


def open_dataset(dataset: str | Dataset, data_root: str | Path, groups: Sequence[str] | None,
                 sources: Mapping[str, str] | None = None) -> Dataset:
    """The registered dataset `dataset` under `data_root`, restricted to `groups`; `sources` (role -> source name,
    e.g. {"visual": "umt_i3d_rgb"}) picks the feature source of a role where the dataset offers several."""
    if isinstance(dataset, Dataset):
        return dataset
    cls = DATASETS.get(dataset)
    if not hasattr(cls, "from_data_root"):
        raise ConfigError(f"dataset {dataset!r} needs a feature provider: pass a {cls.__name__} instance")
    if not sources:
        return cls.from_data_root(data_root, groups)
    if not issubclass(cls, UMTDataset):
        raise ConfigError(f"dataset {dataset!r} offers one feature source per role; --source {dict(sources)} applies "
                          "to the UMT-release datasets (tvsum, youtube_highlights, general)")
    return cls.from_data_root(data_root, groups, sources)


def checkpoint_sources(dataset: str | Dataset, checkpoint: str | Path) -> dict[str, str] | None:
    """role -> source name of a checkpoint's binding when `dataset` is a UMT-release dataset offering them (so that
    `bench --checkpoint` reads the features the checkpoint was trained on, e.g. rgb only); else None."""
    from avhighlights.models.checkpoint import read_checkpoint_info

    cls = type(dataset) if isinstance(dataset, Dataset) else DATASETS.get(dataset)
    if not issubclass(cls, UMTDataset):
        return None
    binding = read_checkpoint_info(checkpoint).binding
    chosen = {role: src.name for role, src in binding.items() if src.name in UMT_SOURCE_OPTIONS.get(role, {})}
    return chosen if len(chosen) == len(binding) else None


def strip_labels(sample: Sample, label_meta_keys: Sequence[str]) -> Sample:
    """A copy without labels or label-bearing meta entries."""
    meta = {k: v for k, v in sample.meta.items() if k not in label_meta_keys}
    return Sample(sample.video_id, sample.features, sample.step_s, None, sample.group, meta)


def method_roles(cls: type[HighlightMethod], overrides: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The roles the method reads: `cls.roles_for(config)` when its roles depend on the config, else `cls.roles`."""
    roles_for = getattr(cls, "roles_for", None)
    return tuple(roles_for(build_config(cls.Config, overrides))) if roles_for else tuple(cls.roles)


def method_dims(cls: type[HighlightMethod], samples: Sequence[Sample],
                roles: Sequence[str] | None = None) -> dict[str, int]:
    """Feature widths of the roles the method reads (default `cls.roles`), taken from the data."""
    roles = tuple(cls.roles if roles is None else roles)
    available = samples[0].features if samples else {}
    missing = [r for r in roles if r not in available]
    if missing:
        raise ConfigError(f"method {cls.name!r} reads roles {missing}; the dataset provides {sorted(available)}")
    return {role: int(available[role].shape[1]) for role in roles}


def seeded_overrides(cls: type[HighlightMethod], overrides: Mapping[str, Any] | None, seed: int) -> dict:
    """User overrides, plus `seed` = run seed when the method's Config has a seed field not set by the user."""
    result = dict(overrides or {})
    if "seed" in {f.name for f in dataclasses.fields(cls.Config)} and "seed" not in result:
        result["seed"] = seed
    return result


TrainedFn = Callable[[HighlightMethod, Split, int, dict[str, float], dict[str, Any]], None]


def predict_all(method: HighlightMethod, samples: Sequence[Sample], label_keys: Sequence[str]) -> list[np.ndarray]:
    preds = []
    for sample in samples:
        scores = np.nan_to_num(np.asarray(method.predict(strip_labels(sample, label_keys)), dtype=np.float64))
        if scores.shape != (sample.n_steps,):
            raise RuntimeError(f"method {method.name} returned {scores.shape} scores for {sample.n_steps} steps "
                               f"of {sample.video_id}")
        preds.append(scores)
    return preds


def train_split(name: str, overrides: Mapping[str, Any] | None, dataset: Dataset, split: Split, seed: int,
                test: Sequence[Sample]) -> tuple[HighlightMethod, dict[str, Any]]:
    """Build the method and, when it is trainable, fit it on the split's train (and val) videos; labels are
    stripped for unsupervised methods. Returns the method and its fit report."""
    cls = METHODS.get(name)
    train, val = (dataset.samples(ids) for ids in (split.train_ids, split.val_ids))
    run_overrides = seeded_overrides(cls, overrides, seed)
    set_seed(seed)  # networks are initialised when built: seeded, so that a seed gives the same numbers every run
    method = create_method(name, method_dims(cls, test, method_roles(cls, run_overrides)), run_overrides)
    label_keys = getattr(dataset, "label_meta_keys", ())
    if not cls.trainable:
        return method, {}
    if not train:
        raise ConfigError(f"method {name!r} needs training videos but split {split.name!r} has none")
    if not cls.supervised:
        train, val = ([strip_labels(s, label_keys) for s in part] for part in (train, val))
    return method, method.fit(train, val or None, seed) or {}


def run_split(name: str, overrides: Mapping[str, Any] | None, dataset: Dataset, split: Split,
              seed: int, protocol: BenchProtocol, trained: HighlightMethod | None = None,
              on_trained: TrainedFn | None = None) -> tuple[dict[str, float], dict[str, Any]]:
    """Build, (fit,) predict and evaluate one split; returns the metrics and the method's info. With `trained`
    (a loaded checkpoint) nothing is built or fitted; `on_trained(method, split, seed, metrics, fit_report)` is
    called after the evaluation (bench --save-checkpoints)."""
    test = dataset.samples(split.test_ids)
    method, fit_report = (trained, {}) if trained is not None else train_split(name, overrides, dataset, split,
                                                                               seed, test)
    preds = predict_all(method, test, getattr(dataset, "label_meta_keys", ()))
    metrics = {**protocol.evaluate(test, preds), COLLAPSED_KEY: collapsed_fraction(preds)}
    if metrics[COLLAPSED_KEY] > 0:
        warnings.warn(f"{name}, seed {seed}, split {split.name}: {metrics[COLLAPSED_KEY]:.0%} of the test videos got "
                      "near-constant scores (a collapsed model); their ranking is noise or the tie rule", stacklevel=2)
    if on_trained is not None:
        on_trained(method, split, seed, metrics, fit_report)
    return metrics, {"method_config": config_to_dict(method.config), "fit": fit_report}


def machine_info() -> dict[str, Any]:
    import torch

    return {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "numpy": np.__version__, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "avhighlights": __version__}


def default_out_dir(dataset: str, protocol: str, method: str) -> Path:
    return Path("bench") / "results" / f"{dataset}-{protocol}-{method}"


def resolve_protocol(ds: Dataset, dataset_name: str, protocol: str | None) -> BenchProtocol:
    proto = PROTOCOLS.get(protocol or ds.default_protocol)()
    if proto.dataset != dataset_name:
        raise ConfigError(f"protocol {proto.name!r} is for dataset {proto.dataset!r}, not {dataset_name!r}")
    return proto


def run_bench(data_root: str | Path, dataset: str | Dataset, method: str | None, seeds: int | Sequence[int],
              domains: Sequence[str] | None = None, out_dir: str | Path | None = None, protocol: str | None = None,
              method_overrides: Mapping[str, Any] | None = None, progress: ProgressFn | None = None,
              save_checkpoints: str | Path | None = None, checkpoint: str | Path | None = None,
              sources: Mapping[str, str] | None = None) -> BenchResult:
    """Run `method` on `dataset` under `protocol` (default: the dataset's) for `seeds` (a count, or
    explicit seeds); write result.json and results.md into `out_dir`. `save_checkpoints`: a folder that gets
    one checkpoint with a model card per (seed, split) (bench_checkpoints.py). `checkpoint`: evaluate that
    checkpoint on every split's test videos without training (`method` may then be None; its binding must
    match the dataset's feature sources; `sources` then defaults to the checkpoint's). `sources`: role -> dataset
    feature source (`open_dataset`)."""
    t0 = time.monotonic()
    load_method_modules()
    if method is None and checkpoint is None:
        raise ConfigError("bench needs --method (or --checkpoint to evaluate a trained model)")
    if method is not None:
        METHODS.get(method)
    if checkpoint is not None and not sources:
        sources = checkpoint_sources(dataset, checkpoint)
    ds = open_dataset(dataset, data_root, domains, sources)
    dataset_name = ds.name
    proto = resolve_protocol(ds, dataset_name, protocol)
    seed_values = seed_list(seeds) if isinstance(seeds, int) else [int(s) for s in seeds]
    per_seed, splits, method_info, fit_reports = {}, {}, {}, {}
    jobs = [(seed, split) for seed in seed_values for split in proto.splits(ds, seed)]
    trained, ckpt_info = _checkpoint_under_test(checkpoint, ds, jobs, method, method_overrides)
    method = ckpt_info.method if ckpt_info else method
    saver = CheckpointSaver(save_checkpoints, ds, proto.name, data_root, domains, method_overrides) \
        if save_checkpoints else None
    for done, (seed, split) in enumerate(jobs):
        metrics, info = run_split(method, method_overrides, ds, split, seed, proto, trained, saver)
        method_info = method_info or info
        per_seed.setdefault(seed, {})[split.name] = metrics
        splits.setdefault(str(seed), []).append(split.to_json())
        if info["fit"]:
            fit_reports.setdefault(str(seed), {})[split.name] = info["fit"]
        if progress:
            progress(f"bench {dataset_name}/{proto.name}/{method}", (done + 1) / len(jobs))
    method_config = method_info.get("method_config")
    config = {"dataset": dataset_name, "protocol": proto.name, "method": method, "data_root": str(data_root),
              "domains": list(domains) if domains else None, "method_overrides": dict(method_overrides or {}),
              "method_config": method_config if ckpt_info else _config_without_run_seed(method_config,
                                                                                        method_overrides),
              "feature_sources": {r: s.to_json() for r, s in ds.feature_sources.items()}}
    if ckpt_info:
        config["checkpoint"] = checkpoint_summary(checkpoint, ckpt_info, ds, jobs)
    extra = {**_dataset_extra(ds), **({"checkpoints": saver.paths} if saver else {})}
    result = BenchResult(config, seed_values, proto.notes, splits, per_seed,
                         summarise(per_seed, list(proto.metrics), proto.std_over), 0.0, machine_info(),
                         extra, fit_reports)
    result.wall_s = round(time.monotonic() - t0, 3)
    default = default_out_dir(dataset_name, proto.name, method + (f"-{Path(checkpoint).stem}" if checkpoint else ""))
    return write_result(result, proto, Path(out_dir) if out_dir else default)


def _checkpoint_under_test(checkpoint: str | Path | None, ds: Dataset, jobs: Sequence[tuple[int, Split]],
                           method: str | None, overrides: Mapping[str, Any] | None
                           ) -> tuple[HighlightMethod | None, CheckpointInfo | None]:
    """The loaded checkpoint (refused when its binding does not match the dataset's feature sources, when
    `method` names another method, or with method overrides), or (None, None) without one."""
    if checkpoint is None:
        return None, None
    if overrides:
        raise ConfigError(f"--set {sorted(overrides)}: a checkpoint is evaluated with its own config; retrain to "
                          "change it")
    trained, info = load_for_dataset(checkpoint, ds, ds.samples(jobs[0][1].test_ids) if jobs else [])
    if method is not None and method != info.method:
        raise ConfigError(f"--method {method!r}, but checkpoint {checkpoint} holds method {info.method!r}")
    return trained, info


def _config_without_run_seed(config: dict | None, overrides: Mapping[str, Any] | None) -> dict | None:
    """The method config, its `seed` shown as "run seed" when bench set it per run."""
    if config is None or "seed" not in config or "seed" in (overrides or {}):
        return config
    return {**config, "seed": "run seed"}


def _dataset_extra(ds: Dataset) -> dict[str, Any]:
    unavailable = getattr(ds, "unavailable_ids", None)
    return {"unavailable_ids": unavailable()} if unavailable else {}


def write_result(result: BenchResult, proto: BenchProtocol, out_dir: Path) -> BenchResult:
    """Atomic result.json and results.md in `out_dir`."""
    data = result.to_json()
    result.json_path = write_json(out_dir / "result.json", _finite(data))
    result.markdown_path = write_text(out_dir / "results.md", markdown_report(data, proto.metrics))
    return result


def _finite(value: Any) -> Any:
    """JSON-safe copy: NaN/inf become None."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
