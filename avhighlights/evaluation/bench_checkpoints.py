"""Checkpoints of benchmark training and their model cards (`bench --save-checkpoints`, `train`,
`bench --checkpoint`).

A checkpoint trained on a dataset binds each role it reads to the dataset's feature SOURCE
(`Dataset.feature_sources`, e.g. `umt_i3d_rgb_flow` of the UMT release, kind "dataset"; a role the
dataset does not describe becomes `<dataset>:<role>` version "unversioned"), with the width seen in
the data. `bench --checkpoint` evaluates it only on a dataset whose sources match that binding.

The model card (safetensors metadata key `model_card`) is a JSON object: `format`, `dataset`,
`protocol`, `domains`, `split`, `group`, `train_ids`, `val_ids`, `test_ids` (None for `train`),
`val_is_test` (the protocol validates on its test list, as UMT's do), `recipe` (method, resolved
config, epochs, lr, `selected_epoch` and `selection`: how it was chosen), `seed`, `test_metrics`
(bench: the split's measured numbers; None for `train`), `validation_metrics` (`train`: the
protocol's metrics on the held-out validation videos), `near_constant_fraction`, `command` (the
command line that reproduces the checkpoint) and `avhighlights` (the version).
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avhighlights import __version__
from avhighlights.core.errors import CheckpointMismatchError
from avhighlights.core.registry import config_to_dict
from avhighlights.core.sample import FeatureSource, Sample
from avhighlights.evaluation.datasets import Dataset, Split
from avhighlights.models.base import HighlightMethod
from avhighlights.models.checkpoint import CheckpointInfo, describe_binding, load_checkpoint, save_checkpoint

CARD_FORMAT = "avhighlights-model-card/1"

COLLAPSED_KEY = "collapsed_fraction"  # per run: the test videos with near-constant scores (core/near_constant.py)


def dataset_binding(ds: Dataset, dims: Mapping[str, int]) -> dict[str, FeatureSource]:
    """role -> the dataset's feature source for every role in `dims`, with the width seen in the data."""
    sources = ds.feature_sources
    return {role: dataclasses.replace(sources[role], dim=int(dim)) if role in sources
            else FeatureSource(f"{ds.name}:{role}", "unversioned", "dataset", int(dim)) for role, dim in dims.items()}


def sample_dims(samples: Sequence[Sample], roles: Sequence[str]) -> dict[str, int]:
    """Width of each role's features in the first sample."""
    return {role: int(samples[0].features[role].shape[1]) for role in roles}


def checkpoint_path(out_dir: str | Path, method: str, seed: int, split: str) -> Path:
    """`DIR/<method>_seed<seed>_<split>.safetensors`, the split name reduced to letters, digits, '-' and '.'."""
    safe = re.sub(r"[^A-Za-z0-9.-]+", "-", split).strip("-.") or "split"
    return Path(out_dir) / f"{method}_seed{seed}_{safe}.safetensors"


def selection_text(fit_report: Mapping[str, Any], has_val: bool, val_is_test: bool) -> str:
    """How the kept epoch was chosen, in words."""
    epoch = fit_report.get("best_epoch")
    if not has_val or not isinstance(epoch, int) or epoch < 0:
        return "the method's own rule without validation (the last epoch for epoch-trained networks)"
    where = "the validation videos (val_ids)"
    if val_is_test:
        where += ", which under this protocol are the test videos: the test numbers are optimistic"
    return f"the epoch with the best validation score of the method on {where}"


def model_card(*, dataset: str, protocol: str, domains: Sequence[str] | None, method: HighlightMethod, seed: int,
               split: Split, fit_report: Mapping[str, Any], command: Sequence[str], test_ids: Sequence[str] | None,
               test_metrics: Mapping[str, float] | None = None,
               validation_metrics: Mapping[str, float] | None = None, near_constant: float = 0.0) -> dict[str, Any]:
    """The model card of a checkpoint trained on `split` (see the module docstring)."""
    config = config_to_dict(method.config)
    val_is_test = bool(test_ids) and bool(set(split.val_ids) & set(test_ids or ()))
    recipe = {"method": method.name, "config": config, "epochs": config.get("epochs"), "lr": config.get("lr"),
              "selected_epoch": fit_report.get("best_epoch"),
              "selection": selection_text(fit_report, bool(split.val_ids), val_is_test)}
    card = {"format": CARD_FORMAT, "dataset": dataset, "protocol": protocol,
            "domains": list(domains) if domains else None, "split": split.name, "group": split.group,
            "train_ids": list(split.train_ids), "val_ids": list(split.val_ids),
            "test_ids": None if test_ids is None else list(test_ids), "val_is_test": val_is_test, "recipe": recipe,
            "seed": seed, "test_metrics": None if test_metrics is None else dict(test_metrics),
            "validation_metrics": None if validation_metrics is None else dict(validation_metrics),
            "near_constant_fraction": near_constant, "command": shlex.join(command), "avhighlights": __version__}
    return json.loads(json.dumps(finite(card), default=str))


def save_trained(method: HighlightMethod, path: Path, ds: Dataset, samples: Sequence[Sample],
                 fit_report: Mapping[str, Any], card: Mapping[str, Any], dtype: Any = None) -> Path:
    """Write `method` with its dataset binding, fit report and model card (tensors cast to `dtype` if given)."""
    binding = dataset_binding(ds, sample_dims(samples, sorted(method.feature_dims)))
    training = {"fit": finite(dict(fit_report)), "seed": card["seed"], "step_s": float(samples[0].step_s),
                "dataset": card["dataset"]}
    return save_checkpoint(method, path, binding, training, card, dtype)


def load_for_dataset(path: str | Path, ds: Dataset, samples: Sequence[Sample]) -> tuple[HighlightMethod,
                                                                                        CheckpointInfo]:
    """Load a checkpoint to evaluate on `ds`; CheckpointMismatchError (naming both bindings) when the dataset's
    feature sources for the checkpoint's roles differ from its binding in name, version or width."""
    from avhighlights.models.checkpoint import read_checkpoint_info

    info = read_checkpoint_info(path)
    available = samples[0].features if samples else {}
    provided = dataset_binding(ds, {r: available[r].shape[1] for r in info.binding if r in available})
    if any(_key(provided.get(role)) != _key(src) for role, src in info.binding.items()):
        raise CheckpointMismatchError(
            f"{path}: checkpoint bound to {describe_binding(info.binding)} ({_dims(info.binding)}); dataset "
            f"{ds.name} provides {describe_binding(provided)} ({_dims(provided)})")
    return load_checkpoint(path)


def _key(src: FeatureSource | None) -> tuple | None:
    return None if src is None else (src.name, src.version, src.dim)


def _dims(binding: Mapping[str, FeatureSource]) -> str:
    return "widths " + ", ".join(f"{r}={s.dim}" for r, s in sorted(binding.items())) if binding else "no roles"


def finite(value: Any) -> Any:
    """JSON-safe copy: NaN/inf become None, numpy scalars and arrays plain Python."""
    if isinstance(value, Mapping):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [finite(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def override_args(overrides: Mapping[str, Any] | None) -> list[str]:
    """`--set KEY=VALUE` arguments (VALUE as JSON) reproducing `overrides`."""
    return [arg for key, value in (overrides or {}).items() for arg in ("--set", f"{key}={json.dumps(value)}")]


def bench_command(data_root: str | Path, dataset: str, method: str, seed: int, protocol: str,
                  domains: Sequence[str] | None, overrides: Mapping[str, Any] | None, out_dir: str | Path) -> list[str]:
    """The `avhighlights bench` command line that retrains (seed, every split) and saves the checkpoints again."""
    return (["avhighlights", "bench", "--data-root", str(data_root), "--dataset", dataset, "--method", method,
             "--protocol", protocol, "--seed-values", str(seed)] + (["--domains", *domains] if domains else [])
            + override_args(overrides) + ["--save-checkpoints", str(out_dir)])


class CheckpointSaver:
    """The `on_trained` hook of `bench --save-checkpoints DIR`: one checkpoint per (seed, split), its card
    holding the split's ids, the recipe, the measured test numbers and the reproducing command; `paths` is
    seed -> split -> file (recorded in result.json `extra.checkpoints`)."""

    def __init__(self, out_dir: str | Path, ds: Dataset, protocol: str, data_root: str | Path,
                 domains: Sequence[str] | None, overrides: Mapping[str, Any] | None):
        self.out_dir, self.ds, self.protocol, self.data_root = Path(out_dir), ds, protocol, data_root
        self.domains, self.overrides = domains, dict(overrides or {})
        self.paths: dict[str, dict[str, str]] = {}

    def __call__(self, method: HighlightMethod, split: Split, seed: int, metrics: Mapping[str, float],
                 fit_report: Mapping[str, Any]) -> None:

        command = bench_command(self.data_root, self.ds.name, method.name, seed, self.protocol, self.domains,
                                self.overrides, self.out_dir)
        test_metrics = {k: v for k, v in metrics.items() if k != COLLAPSED_KEY}
        card = model_card(dataset=self.ds.name, protocol=self.protocol, domains=self.domains, method=method,
                          seed=seed, split=split, fit_report=fit_report, command=command, test_ids=split.test_ids,
                          test_metrics=test_metrics, near_constant=metrics.get(COLLAPSED_KEY, 0.0))
        samples = self.ds.samples(split.test_ids)
        path = save_trained(method, checkpoint_path(self.out_dir, method.name, seed, split.name), self.ds, samples,
                            fit_report, card)
        self.paths.setdefault(str(seed), {})[split.name] = str(path)


def checkpoint_summary(path: str | Path, info: CheckpointInfo, ds: Dataset,
                       splits: Sequence[tuple[int, Split]]) -> dict[str, Any]:
    """What result.json records about an evaluated checkpoint: its file, method, binding, where it was trained
    and, per (seed, split), how many test videos were among its training or validation videos."""
    card = info.model_card
    seen = set(card.get("train_ids") or ()) | set(card.get("val_ids") or ())
    seen = seen if card.get("dataset") == ds.name else set()
    overlap = {f"{seed}/{split.name}": len(seen & set(split.test_ids)) for seed, split in splits}
    return {"path": str(path), "method": info.method, "binding": {r: s.to_json() for r, s in info.binding.items()},
            "trained_on": {k: card.get(k) for k in ("dataset", "protocol", "split", "seed", "command")},
            "test_videos_seen_in_training": overlap}
