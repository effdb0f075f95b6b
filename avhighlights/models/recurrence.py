"""Unsupervised highlight detection from audio-visual recurrence (Islam, Paul, Rochan; spec §2).

`fit` never reads labels: it clusters the training videos into pseudo-categories (or uses the
real `sample.group` metadata), scores every clip by how much it recurs across its category
(pseudo_labels.py), binarises the top 50 % per video and trains one Joint-VA network
(joint_va.py, no noise sentinel) over all training videos with BCE against those pseudo-labels.

`direct_pseudo=True` skips the network: a test video is assigned to the training category whose
mean descriptor is nearest (cosine) and scored against that category's mean unit vectors (its
own clips are not part of the category mean, unlike training videos).

Recipes (`recipe`, RECIPES; a field set explicitly wins over the recipe):
* `paper`: exactly the paper's: AV-PH cosine pseudo-labels, top 50 %, BCE, Adam at the dataset
  preset's lr / epochs (spec §2 "Training": TVSum 2.5e-3 / 20, YouTube 5e-3 / 100, QVHighlights
  5e-4 / 10), the network's scores as predictions.
* `ours` (the default, issue #14): the recurrence pseudo-scores carry almost no signal on the shared
  features (bench/results/unsupervised/ROOT_CAUSE.md: rho with the ground truth -0.05..+0.17 per
  YouTube domain, -0.09 on TVSum), while the training-free motion prior (the visual feature's L2
  norm, recurrence_prior.py) has rho +0.14..+0.40. Ours fuses them in the pseudo-scores,
  rank(recurrence) + `motion_weight` x rank(prior) (motion_weight 4), trains the network at Adam
  5e-4 for 20 epochs (label-free, the last epoch is kept), and predicts
  rank(network) + `blend_weight` x rank(prior) (blend_weight 1): a self-training ensemble.

Collapse guard (both recipes): a fit whose network scores near-constant on more than half of its
training videos is retried `collapse_retries` times from a fresh initialisation with the learning
rate divided by 10 each time, then refused with CollapsedFitError (core/near_constant.guarded_fit).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from avhighlights.core.errors import ConfigError
from avhighlights.core.near_constant import guarded_fit
from avhighlights.core.progress import ProgressFn
from avhighlights.core.sample import Sample
from avhighlights.models.base import METHODS, collapsed_fraction
from avhighlights.models.joint_va import MODALITIES, JointVAMethod, JointVANet
from avhighlights.models.pseudo_labels import (
    av_pseudo_scores,
    category_means,
    normaliser,
    pseudo_categories,
    recurrence_scores,
    top_fraction_binary,
    unit_rows,
    video_descriptor,
)
from avhighlights.models.recurrence_prior import fused_scores, motion_prior, rank_unit
from avhighlights.models.torch_method import run_epochs, set_seed

# Paper's Adam learning rate and epochs per dataset (Islam et al., training table).
PRESETS: dict[str, tuple[float, int]] = {"tvsum": (2.5e-3, 20), "youtube": (5e-3, 100), "qvhighlights": (5e-4, 10)}
CATEGORY_SOURCES = ("pseudo", "real")
PSEUDO_PREFIX = "pseudo."
RETRY_LR_FACTOR = 0.1  # the collapse guard's fallback: each retry divides the learning rate by 10


@dataclass(frozen=True)
class Recipe:
    """What a recipe sets: lr / epochs (None: the dataset preset), the motion prior's weight in the
    pseudo-scores and in the predictions (0: not used)."""

    lr: float | None
    epochs: int | None
    motion_weight: float
    blend_weight: float


RECIPES: dict[str, Recipe] = {"paper": Recipe(None, None, 0.0, 0.0), "ours": Recipe(5e-4, 20, 4.0, 1.0)}


@dataclass(frozen=True)
class RecurrenceConfig:
    recipe: str = "ours"  # RECIPES: "paper" (the paper's recipe) or "ours" (module docstring)
    dataset_preset: str = "tvsum"  # the paper recipe's lr / epochs come from PRESETS unless lr / epochs are set (> 0)
    lr: float = 0.0  # > 0 wins over the recipe
    epochs: int = 0  # > 0 wins over the recipe
    motion_weight: float | None = None  # None: the recipe's; weight of rank(motion prior) in the pseudo-scores
    blend_weight: float | None = None  # None: the recipe's; weight of rank(motion prior) in the predictions
    collapse_retries: int = 2  # collapse guard: retries at lr / 10 each before refusing
    batch_size: int = 4
    weight_decay: float = 0.0
    d_model: int = 512
    heads: int = 4
    dropout: float = 0.5
    attn_dropout: float = 0.1
    noise_sentinel: bool = False
    modalities: tuple[str, ...] = MODALITIES  # network inputs (unimodal ablations: ("visual",) / ("audio",))
    extra_self_attention: int = 0
    extra_fc: int = 0
    fc_hidden: int = 256
    ph_mode: str = "av"  # pseudo-highlight source: "av", "a" (A-PH only) or "v" (V-PH only)
    similarity: str = "cosine"  # or "pearson"
    categories: str = "pseudo"  # or "real" (sample.group metadata)
    top_fraction: float = 0.5
    direct_pseudo: bool = False  # use pseudo-highlight scores as predictions (no network)


def recipe_of(config: RecurrenceConfig) -> Recipe:
    if config.recipe not in RECIPES:
        raise ConfigError(f"recurrence: recipe must be one of {sorted(RECIPES)}, got {config.recipe!r}")
    return RECIPES[config.recipe]


def resolve_schedule(config: RecurrenceConfig) -> tuple[float, int]:
    """(lr, epochs): explicit values win, else the recipe's, else (paper) the dataset preset."""
    if config.dataset_preset not in PRESETS:
        raise ConfigError(f"recurrence: dataset_preset must be one of {sorted(PRESETS)}, got {config.dataset_preset!r}")
    recipe = recipe_of(config)
    preset_lr, preset_epochs = PRESETS[config.dataset_preset]
    lr = recipe.lr if recipe.lr is not None else preset_lr
    epochs = recipe.epochs if recipe.epochs is not None else preset_epochs
    return (config.lr if config.lr > 0 else lr), (config.epochs if config.epochs > 0 else epochs)


def resolve_weights(config: RecurrenceConfig) -> tuple[float, float]:
    """(motion_weight, blend_weight): explicit values win, else the recipe's."""
    recipe = recipe_of(config)
    motion = recipe.motion_weight if config.motion_weight is None else config.motion_weight
    blend = recipe.blend_weight if config.blend_weight is None else config.blend_weight
    if motion < 0 or blend < 0:
        raise ConfigError(f"recurrence: motion_weight and blend_weight must be >= 0, got {motion}, {blend}")
    return motion, blend


def assign_categories(train: Sequence[Sample], source: str, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Category index per training video: pseudo (clustering) or real (`sample.group`)."""
    if source == "pseudo":
        descriptors = np.stack([video_descriptor(s.features["visual"], s.features["audio"]) for s in train])
        return pseudo_categories(descriptors, seed)
    if source == "real":
        groups = sorted({str(s.group) for s in train})
        return np.array([groups.index(str(s.group)) for s in train]), {"k": len(groups), "real_groups": groups}
    raise ConfigError(f"recurrence: categories must be one of {CATEGORY_SOURCES}, got {source!r}")


@METHODS.register("recurrence")
class RecurrenceMethod(JointVAMethod):
    """Islam et al.: Joint-VA trained on audio-visual recurrence pseudo-labels (module docstring)."""

    Config = RecurrenceConfig
    roles = MODALITIES
    supervised = False
    default_binding = {"visual": "r3d34", "audio": "panns_cnn14_16k"}

    def __init__(self, config: RecurrenceConfig, feature_dims: Mapping[str, int]):
        super().__init__(config, feature_dims)
        self.pseudo_state: dict[str, torch.Tensor] = {}
        normaliser(config.similarity)
        resolve_schedule(config)
        self.motion_weight, self.blend_weight = resolve_weights(config)
        if config.collapse_retries < 0:
            raise ConfigError(f"recurrence: collapse_retries must be >= 0, got {config.collapse_retries}")

    def build_module(self) -> nn.Module:
        cfg = self.config
        return JointVANet(self.feature_dims["visual"], self.feature_dims["audio"], cfg.d_model, cfg.heads, cfg.dropout,
                          cfg.noise_sentinel, cfg.modalities, cfg.extra_self_attention, cfg.extra_fc, cfg.fc_hidden,
                          cfg.attn_dropout)

    def pseudo_labels(self, train: Sequence[Sample], seed: int) -> tuple[list[np.ndarray], dict[str, Any]]:
        """Binary pseudo-labels per training video plus a clustering report; stores category means."""
        cfg = self.config
        categories, report = assign_categories(train, cfg.categories, seed)
        visual = [np.asarray(s.features["visual"]) for s in train]
        audio = [np.asarray(s.features["audio"]) for s in train]
        scores = av_pseudo_scores(visual, audio, categories, cfg.ph_mode, cfg.similarity)
        scores = [fused_scores(r, motion_prior(v), self.motion_weight) for r, v in zip(scores, visual, strict=True)]
        self._store_categories(visual, audio, categories)
        report["category_sizes"] = np.bincount(categories).tolist()
        return [top_fraction_binary(s, cfg.top_fraction) for s in scores], report

    def _store_categories(self, visual: list[np.ndarray], audio: list[np.ndarray], categories: np.ndarray) -> None:
        norm = normaliser(self.config.similarity)
        cats = sorted(np.unique(categories).tolist())
        means_v, means_a = category_means(visual, categories, norm), category_means(audio, categories, norm)
        descriptors = unit_rows(np.stack([video_descriptor(v, a) for v, a in zip(visual, audio, strict=True)]))
        centroids = np.stack([descriptors[categories == c].mean(axis=0) for c in cats])  # (K, Dv + Da)
        arrays = {"mean_visual": np.stack([means_v[c] for c in cats]),
                  "mean_audio": np.stack([means_a[c] for c in cats]), "centroids": centroids}
        self.pseudo_state = {PSEUDO_PREFIX + k: torch.from_numpy(v.astype(np.float32)) for k, v in arrays.items()}

    def fit(self, train: Sequence[Sample], val: Sequence[Sample] | None = None, seed: int = 0,
            progress: ProgressFn | None = None) -> dict[str, Any]:
        """Pseudo-label `train` (labels never read) and, unless `direct_pseudo`, train the network under the
        collapse guard (module docstring). `val` is ignored: without labels there is no honest checkpoint
        selection; the last epoch is kept."""
        set_seed(seed)
        targets, report = self.pseudo_labels(train, seed)
        if self.config.direct_pseudo:
            return {"clustering": report, "network": False}
        lr, epochs = resolve_schedule(self.config)
        hint = ("Lower the learning rate (--set lr=...), or use direct_pseudo=true (no network).")
        trained = guarded_fit(lambda attempt: self._fit_network(train, targets, seed, attempt, lr, epochs, progress),
                              self.config.collapse_retries, "recurrence", hint)
        return {"clustering": report, **trained, "epochs": epochs, "parameters": self.parameter_count(),
                "motion_weight": self.motion_weight, "blend_weight": self.blend_weight}

    def _fit_network(self, train: Sequence[Sample], targets: list[np.ndarray], seed: int, attempt: int,
                     lr: float, epochs: int, progress: ProgressFn | None) -> tuple[dict[str, Any], float]:
        """One training run (attempt > 0: a fresh network, seed + attempt, lr x RETRY_LR_FACTOR ** attempt);
        returns its report and the fraction of training videos whose network scores are near-constant."""
        lr = lr * RETRY_LR_FACTOR**attempt
        if attempt:
            set_seed(seed + attempt)
            self.module = self.build_module().to(self.device)
            warnings.warn(f"recurrence: the network collapsed to near-constant scores; retry {attempt} of "
                          f"{self.config.collapse_retries} from a fresh initialisation at lr {lr:g}", stacklevel=3)
        rng = np.random.default_rng(seed + attempt)
        pairs = list(zip(train, targets, strict=True))
        optimiser = torch.optim.Adam(self.module.parameters(), lr=lr, weight_decay=self.config.weight_decay)
        run = run_epochs(self.module, epochs, lambda _: self._train_epoch(pairs, optimiser, rng), None, progress)
        collapsed = collapsed_fraction([self.network_scores(Sample(s.video_id, s.features, s.step_s)) for s in train])
        report = {"train_loss": [h["total"] for h in run.history], "lr": lr, "near_constant_on_train": collapsed}
        return report, collapsed

    def predict(self, sample: Sample) -> np.ndarray:
        """The network's (or, with `direct_pseudo`, the pseudo-highlight) scores; with a blend weight > 0,
        rank(scores) + blend_weight x rank(motion prior)."""
        scores = self.direct_scores(sample) if self.config.direct_pseudo else self.network_scores(sample)
        if self.blend_weight == 0:
            return scores
        return rank_unit(scores) + self.blend_weight * rank_unit(motion_prior(sample.features["visual"]))

    def network_scores(self, sample: Sample) -> np.ndarray:
        return super().predict(sample)

    def direct_scores(self, sample: Sample) -> np.ndarray:
        """Pseudo-highlight scores of an unseen video against its nearest training category."""
        if not self.pseudo_state:
            raise ConfigError("recurrence: direct_pseudo needs fit() (or a checkpoint) before predict()")
        visual, audio = np.asarray(sample.features["visual"]), np.asarray(sample.features["audio"])
        centroids = self.pseudo_state[PSEUDO_PREFIX + "centroids"].double().numpy()
        cat = int(np.argmax(centroids @ unit_rows(video_descriptor(visual, audio)[None])[0]))
        norm = normaliser(self.config.similarity)
        parts = {"v": (visual, "mean_visual"), "a": (audio, "mean_audio")}
        chosen = [parts[m] for m in ("v", "a") if m in self.config.ph_mode]
        recurrence = np.mean([recurrence_scores(x, self.pseudo_state[PSEUDO_PREFIX + key][cat].double().numpy(), norm)
                              for x, key in chosen], axis=0)
        return fused_scores(recurrence, motion_prior(visual), self.motion_weight)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {**super().state_dict(), **self.pseudo_state}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.pseudo_state = {k: torch.as_tensor(v) for k, v in state.items() if k.startswith(PSEUDO_PREFIX)}
        super().load_state_dict({k: v for k, v in state.items() if not k.startswith(PSEUDO_PREFIX)})
