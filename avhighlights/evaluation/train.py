"""`avhighlights train`: one final model on all the training material a dataset offers, written as a
checkpoint with a model card (bench_checkpoints.py).

Training material: the union of the train (and validation) lists of the dataset's standard splits
(`Dataset.splits()`, restricted to `domains`), minus every video on any split's test list. From it a
validation part is held out: per group (domain / category) a fixed fraction (`val_fraction`, default
0.15; at least one video when the group has two or more) drawn by `numpy.random.default_rng(seed)`
over the sorted ids, groups in sorted order. The method's own epoch selection uses that part (the
epoch with the best validation score is kept); the test list is never read. The card records the
validation numbers (the dataset protocol's metrics on the held-out videos); test numbers come from
`avhighlights bench` (`--checkpoint` on this file evaluates it on the test lists without training).

`exclude_domains` trains on every group of the dataset but those (leave-one-domain-out, e.g. `general` without
`parkour`); `sources` picks a role's dataset feature source (e.g. visual = `umt_i3d_rgb`, no optical flow);
`dtype="float16"` stores the weights in half precision (loading casts them back).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avhighlights.core.errors import ConfigError
from avhighlights.core.progress import ProgressFn
from avhighlights.evaluation.bench import (
    load_method_modules,
    method_dims,
    method_roles,
    open_dataset,
    predict_all,
    resolve_protocol,
    seeded_overrides,
    strip_labels,
)
from avhighlights.evaluation.bench_checkpoints import model_card, override_args, save_trained
from avhighlights.evaluation.datasets import Dataset, Split
from avhighlights.models.base import METHODS, HighlightMethod, collapsed_fraction, create_method
from avhighlights.models.torch_method import set_seed

DEFAULT_VAL_FRACTION = 0.15
DEFAULT_SEED = 42
DTYPES = ("float32", "float16")


@dataclass
class TrainReport:
    """What `train_checkpoint` trained and wrote."""

    checkpoint: Path
    method: str
    split: Split
    validation_metrics: dict[str, float] | None
    fit: dict[str, Any]
    card: dict[str, Any]
    seconds: float


def training_pool(ds: Dataset) -> dict[str, list[str]]:
    """group -> sorted training ids of the standard splits (train + val lists), never a test-listed id."""
    splits = ds.splits()
    tested = {v for split in splits for v in split.test_ids}
    pool: dict[str, set[str]] = {}
    for split in splits:
        pool.setdefault(split.group or "all", set()).update(v for v in split.train_ids + split.val_ids
                                                             if v not in tested)
    return {group: sorted(ids) for group, ids in sorted(pool.items()) if ids}


def validation_split(pool: Mapping[str, Sequence[str]], fraction: float, seed: int) -> Split:
    """Hold out round(fraction * n) videos per group (at least 1 when n >= 2), seeded; the rest train."""
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"--val-fraction must be in [0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    train, val = [], []
    for group in sorted(pool):
        ids = sorted(pool[group])
        n_val = 0 if len(ids) < 2 or fraction == 0 else min(len(ids) - 1, max(1, int(round(fraction * len(ids)))))
        order = rng.permutation(len(ids))
        val += [ids[i] for i in sorted(order[:n_val])]
        train += [ids[i] for i in sorted(order[n_val:])]
    if not train:
        raise ConfigError("the dataset offers no training videos outside its test lists")
    return Split(f"train_val{fraction:g}_seed{seed}", tuple(train), tuple(val), (), "all")


def train_command(data_root: str | Path, dataset: str, method: str, domains: Sequence[str] | None, seed: int,
                  val_fraction: float, overrides: Mapping[str, Any] | None, out: str | Path,
                  exclude_domains: Sequence[str] | None = None, sources: Mapping[str, str] | None = None,
                  dtype: str = "float32") -> list[str]:
    """The `avhighlights train` command line that reproduces the checkpoint."""
    return (["avhighlights", "train", "--data-root", str(data_root), "--dataset", dataset, "--method", method]
            + (["--domains", *domains] if domains else [])
            + (["--exclude-domains", *exclude_domains] if exclude_domains else [])
            + [arg for role, name in sorted((sources or {}).items()) for arg in ("--source", f"{role}={name}")]
            + ["--seed", str(seed), "--val-fraction", f"{val_fraction:g}"]
            + override_args(overrides) + (["--dtype", dtype] if dtype != "float32" else []) + ["--out", str(out)])


def resolve_domains(dataset: str | Dataset, data_root: str | Path, domains: Sequence[str] | None,
                    exclude_domains: Sequence[str] | None, sources: Mapping[str, str] | None = None
                    ) -> list[str] | None:
    """`domains`, or without `exclude_domains`: every group of the dataset's splits (or of `domains`) but those;
    an excluded name that is no group is a ConfigError."""
    if not exclude_domains:
        return list(domains) if domains else None
    groups = sorted({s.group for s in open_dataset(dataset, data_root, domains, sources).splits() if s.group})
    unknown = sorted(set(exclude_domains) - set(groups))
    if unknown:
        raise ConfigError(f"--exclude-domains {unknown}: not a domain of the dataset (domains: {' '.join(groups)})")
    kept = [g for g in groups if g not in set(exclude_domains)]
    if not kept:
        raise ConfigError("--exclude-domains leaves no domain to train on")
    return kept


def train_checkpoint(data_root: str | Path, dataset: str | Dataset, method: str, out: str | Path,
                     domains: Sequence[str] | None = None, seed: int = DEFAULT_SEED,
                     val_fraction: float = DEFAULT_VAL_FRACTION, method_overrides: Mapping[str, Any] | None = None,
                     protocol: str | None = None, progress: ProgressFn | None = None,
                     exclude_domains: Sequence[str] | None = None, sources: Mapping[str, str] | None = None,
                     dtype: str = "float32") -> TrainReport:
    """Train `method` on the dataset's training material (see the module docstring) and write `out`."""
    t0 = time.monotonic()
    load_method_modules()
    cls = METHODS.get(method)
    if not cls.trainable:
        raise ConfigError(f"method {method!r} is a reference method and needs no training; score with it directly")
    if dtype not in DTYPES:
        raise ConfigError(f"--dtype must be one of {DTYPES}, got {dtype!r}")
    groups = resolve_domains(dataset, data_root, domains, exclude_domains, sources)
    ds = open_dataset(dataset, data_root, groups, sources)
    proto = resolve_protocol(ds, ds.name, protocol)
    split = validation_split(training_pool(ds), val_fraction, seed)
    train, val = ds.samples(split.train_ids), ds.samples(split.val_ids)
    overrides = seeded_overrides(cls, method_overrides, seed)
    set_seed(seed)  # the network's initial weights too
    model = create_method(method, method_dims(cls, train, method_roles(cls, overrides)), overrides)
    labels = getattr(ds, "label_meta_keys", ())
    fit_train, fit_val = (train, val) if cls.supervised else (
        [strip_labels(s, labels) for s in part] for part in (train, val))
    fit = model.fit(fit_train, fit_val or None, seed, progress) or {}
    val_metrics, near_constant = _validate(model, proto, val, labels)
    command = train_command(data_root, ds.name, method, domains, seed, val_fraction, method_overrides, out,
                            exclude_domains, sources, dtype)
    card = model_card(dataset=ds.name, protocol=proto.name, domains=groups, method=model, seed=seed, split=split,
                      fit_report=fit, command=command, test_ids=None, validation_metrics=val_metrics,
                      near_constant=near_constant)
    card["test_metrics_note"] = ("no test split: trained on all training material; test numbers come from "
                                 f"`avhighlights bench --checkpoint {out} --data-root ... --dataset {ds.name}`")
    card["excluded_domains"] = list(exclude_domains) if exclude_domains else None
    card["weights_dtype"] = dtype
    path = save_trained(model, Path(out), ds, train, fit, card, getattr(torch, dtype))
    return TrainReport(path, method, split, val_metrics, fit, card, time.monotonic() - t0)


def _validate(model: HighlightMethod, proto, val: Sequence, label_keys: Sequence[str]
              ) -> tuple[dict[str, float] | None, float]:
    """The protocol's metrics and the near-constant fraction on the validation videos (None, 0 without any)."""
    if not val:
        return None, 0.0
    preds = predict_all(model, val, label_keys)
    try:
        metrics = proto.evaluate(val, preds)
    except KeyError:  # a cross-dataset protocol scores the target dataset's labels, which training videos lack
        metrics = None
    return metrics, collapsed_fraction(preds)
