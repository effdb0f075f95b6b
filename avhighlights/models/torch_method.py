"""Shared plumbing for methods backed by a torch network: padded batches with masks, seeding,
device placement, checkpoint state, and best-epoch tracking."""

from __future__ import annotations

import copy
import random
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from avhighlights.core.progress import ProgressFn
from avhighlights.core.sample import Sample
from avhighlights.models.base import HighlightMethod


@dataclass
class Batch:
    """Samples padded to the longest one. `mask` is True on valid steps."""

    features: dict[str, torch.Tensor]  # role -> (B, T, D)
    mask: torch.Tensor  # (B, T) bool
    labels: torch.Tensor | None  # (B, T) float, 0 on padded steps
    video_ids: list[str]

    @property
    def lengths(self) -> torch.Tensor:
        return self.mask.sum(dim=1)  # (B,)


def collate(samples: Sequence[Sample], roles: Sequence[str], device: torch.device | str = "cpu",
            labels: Sequence[np.ndarray] | None = None) -> Batch:
    """Pad `samples` to a common length; `labels` overrides the samples' own labels (pseudo-labels)."""
    lengths = [s.n_steps for s in samples]
    t_max = max(lengths)
    feats = {role: torch.zeros(len(samples), t_max, samples[0].features[role].shape[1]) for role in roles}
    mask = torch.zeros(len(samples), t_max, dtype=torch.bool)
    label_rows = labels if labels is not None else [s.labels for s in samples]
    has_labels = all(row is not None for row in label_rows)
    y = torch.zeros(len(samples), t_max) if has_labels else None
    for i, (sample, n) in enumerate(zip(samples, lengths, strict=True)):
        for role in roles:
            feats[role][i, :n] = torch.from_numpy(np.asarray(sample.features[role][:n], dtype=np.float32))
        mask[i, :n] = True
        if y is not None:
            y[i, :n] = torch.from_numpy(np.asarray(label_rows[i][:n], dtype=np.float32))
    return Batch({r: f.to(device) for r, f in feats.items()}, mask.to(device),
                 None if y is None else y.to(device), [s.video_id for s in samples])


def set_seed(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def minibatches(items: Sequence[Any], batch_size: int, rng: np.random.Generator,
                drop_last: bool = False) -> Iterator[list[Any]]:
    """Shuffled minibatches; with `drop_last` the incomplete tail batch is skipped (unless it is the only one)."""
    order = rng.permutation(len(items))
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        if drop_last and len(chunk) < batch_size and start > 0:
            break
        yield [items[i] for i in chunk]


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `values` (B, T) over valid steps of the whole batch."""
    weights = mask.to(values.dtype)
    return (values * weights).sum() / weights.sum().clamp_min(1.0)


class BestTracker:
    """Keeps a copy of the module state with the best validation score (ties: the later epoch wins)."""

    def __init__(self) -> None:
        self.best_score = -float("inf")
        self.best_epoch = -1
        self.best_state: dict[str, torch.Tensor] | None = None

    def update(self, score: float, epoch: int, module: nn.Module) -> bool:
        if score >= self.best_score:
            self.best_score, self.best_epoch = score, epoch
            self.best_state = copy.deepcopy(module.state_dict())
            return True
        return False

    def restore(self, module: nn.Module) -> None:
        if self.best_state is not None:
            module.load_state_dict(self.best_state)


class TorchMethod(HighlightMethod):
    """A method whose scores come from `self.module`; subclasses build the module and define
    `forward_scores` (eval-mode scores (B, T) in a batch) and `fit`."""

    def __init__(self, config: Any, feature_dims: Mapping[str, int]):
        super().__init__(config, feature_dims)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.module = self.build_module().to(self.device)

    def to_device(self, device: str | None) -> TorchMethod:
        """Move the network (and every later batch) to `device`; None keeps the current one."""
        if device is not None:
            self.device = torch.device(device)
            self.module.to(self.device)
        return self

    @abstractmethod
    def build_module(self) -> nn.Module:
        """The network, sized from `self.config` and `self.feature_dims`."""

    @abstractmethod
    def forward_scores(self, batch: Batch) -> torch.Tensor:
        """Highlight scores (B, T) for a batch (higher = more highlight-worthy)."""

    @torch.no_grad()
    def predict(self, sample: Sample) -> np.ndarray:
        self.module.eval()
        batch = collate([sample], self.roles, self.device)
        scores = self.forward_scores(batch)[0, : sample.n_steps]
        return np.nan_to_num(scores.float().cpu().numpy(), nan=0.0)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.module.state_dict().items()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.module.load_state_dict(dict(state), strict=True)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.module.parameters())


@dataclass
class EpochReport:
    """What `run_epochs` returns: per-epoch mean losses and the selected epoch."""

    history: list[dict[str, float]]
    best_epoch: int
    best_val: float | None


def run_epochs(module: nn.Module, epochs: int, train_epoch: Callable[[int], dict[str, float]],
               val_score: Callable[[], float] | None = None, progress: ProgressFn | None = None) -> EpochReport:
    """The shared epoch loop: train, score on validation (keeping the best state, ties -> later epoch),
    report progress, and restore the best state at the end. `train_epoch(epoch)` returns mean losses
    with a "total" key."""
    tracker, history = BestTracker(), []
    for epoch in range(epochs):
        history.append(train_epoch(epoch))
        if val_score is not None:
            tracker.update(val_score(), epoch, module)
        if progress:
            progress("train", (epoch + 1) / epochs)  # one stable stage name: one bar, not one per epoch
    tracker.restore(module)
    best_val = tracker.best_score if val_score is not None else None
    return EpochReport(history, tracker.best_epoch, best_val)
