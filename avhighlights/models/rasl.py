"""RASL as a method (spec §4): unsupervised pretraining on unlabelled windows, then visual-branch
inference. Feature-level variant: the paper encodes 5-fps frames with Swin and audio with
Mockingjay; here any bound visual/audio features are used (default binding Swin + PANNs CNN14:
Mockingjay weights are not available), and the audio feature axis is linearly interpolated to
the visual width d_v as the paper does. On the shared UMT features a step is a 2-s clip (TVSum)
or a dataset clip (YouTube), so the window length `window_steps` is configurable (paper: 150).

Windows: training uses consecutive non-overlapping windows of N steps (a final partial window
is taken as the last N steps); videos shorter than N are looped, then cropped to N. Inference
splits a video into consecutive N-step chunks, loops each short chunk to N, keeps the scores of
its real steps, concatenates and min-max normalises per video.

Recipes (`recipe`, RECIPES; a field set explicitly wins over the recipe):
* `paper`: the paper's network as the spec reads it: s = the bias-free FC (unbounded), per-step kernels
  (the N steps are the conv channels), all four loss terms, visual s^v alone at inference.
* `ours`: see RECIPES and bench/results/unsupervised/RASL_ABLATION.md (why: the unbounded s lets the
  k-point loss be solved by scale, and per-step kernels let s key on the position in the window).
  `prior_weight` > 0 ranks by (rank(s^v) + prior_weight x rank(visual L2 norm)) / (1 + prior_weight) (the
  motion prior of recurrence_prior.py, the training-free `feature_norm`), a label-free ensemble.

Loss ablations: `kpoint_loss=False`, `aux_loss=False`, `scl_loss=False` drop L_r, L_au, L_s from Eq. 11;
`contrast=False` is the paper's "without contrast" form of L_r.

Collapse guard: a pretraining whose visual scores are near-constant on more than half of the training
videos is retried `collapse_retries` times from a fresh initialisation with the learning rate divided
by 10 each time, then refused with CollapsedFitError (core/near_constant.guarded_fit).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avhighlights.core.errors import ConfigError
from avhighlights.core.near_constant import guarded_fit
from avhighlights.core.progress import ProgressFn
from avhighlights.core.sample import Sample
from avhighlights.models.base import METHODS, collapsed_fraction
from avhighlights.models.rasl_losses import (
    kpoint_loss,
    logit_scale,
    random_step_mask,
    reconstruction_l1,
    scl_loss,
)
from avhighlights.models.rasl_net import RASLNet, activation_fn
from avhighlights.models.recurrence_prior import motion_prior, rank_unit
from avhighlights.models.torch_method import Batch, TorchMethod, minibatches, run_epochs, set_seed

MODALITIES = ("visual", "audio")
RETRY_LR_FACTOR = 0.1  # the collapse guard's fallback: each retry divides the learning rate by 10


@dataclass(frozen=True)
class Recipe:
    """What a recipe sets: the activation s, per-step or shared kernels, the motion prior's weight at inference,
    the conv kernels' initialisation."""

    activation: str
    per_step_kernels: bool
    prior_weight: float
    kernel_init: str = "default"


RECIPES: dict[str, Recipe] = {"paper": Recipe("linear", True, 0.0, "default"),
                              "ours": Recipe("standardised_sigmoid", False, 1.0, "positive")}


@dataclass(frozen=True)
class RASLConfig:
    window_steps: int = 150  # N (paper: 30 s at 5 fps)
    k: int = 10  # k-point contrast
    lr: float = 1e-3  # RMSprop
    batch_size: int = 8
    epochs: int = 10  # unspecified in the paper
    mask_ratio: float = 0.5  # auxiliary masked reconstruction
    gamma_init: float = 3.1
    gamma_mode: str = "exp"  # SCL logit scale exp(Gamma) or "multiplier" (Gamma itself)
    contrast: bool = True  # False: the "without contrast" ablation of the k-point loss
    attn_bias: bool = True
    recipe: str = "ours"  # RECIPES: "paper" or "ours" (module docstring)
    activation: str | None = None  # None: the recipe's; "linear" (paper) or "sigmoid" (s bounded to (0, 1))
    per_step_kernels: bool | None = None  # None: the recipe's; True: the spec's per-step kernels, False: shared
    prior_weight: float | None = None  # None: the recipe's; weight of rank(motion prior) added to rank(s^v)
    kernel_init: str | None = None  # None: the recipe's; rasl_net.KERNEL_INITS "default" or "positive"
    kpoint_loss: bool = True  # False: L_r dropped (ablation)
    aux_loss: bool = True  # False: L_au dropped (ablation)
    scl_loss: bool = True  # False: L_s dropped (ablation)
    collapse_retries: int = 2  # collapse guard: retries at lr / 10 each before refusing


def resolved(config: RASLConfig) -> Recipe:
    """The recipe's activation / kernels / prior weight, each replaced by the config's value when set."""
    if config.recipe not in RECIPES:
        raise ConfigError(f"rasl: recipe must be one of {sorted(RECIPES)}, got {config.recipe!r}")
    recipe = RECIPES[config.recipe]
    out = Recipe(recipe.activation if config.activation is None else config.activation,
                 recipe.per_step_kernels if config.per_step_kernels is None else bool(config.per_step_kernels),
                 recipe.prior_weight if config.prior_weight is None else float(config.prior_weight),
                 recipe.kernel_init if config.kernel_init is None else config.kernel_init)
    activation_fn(out.activation)
    if out.prior_weight < 0:
        raise ConfigError(f"rasl: prior_weight must be >= 0, got {out.prior_weight}")
    return out


def loop_to_length(values: np.ndarray, n_steps: int) -> np.ndarray:
    """Repeat rows (T, D) cyclically, then crop to (n_steps, D)."""
    return values[np.arange(n_steps) % len(values)]


def training_starts(n_total: int, n_steps: int) -> list[int]:
    """Starts of consecutive windows; a partial tail becomes the last n_steps (none if T <= N)."""
    if n_total <= n_steps:
        return [0]
    starts = list(range(0, n_total - n_steps + 1, n_steps))
    return starts + ([n_total - n_steps] if starts[-1] + n_steps < n_total else [])


def window(values: np.ndarray, start: int, n_steps: int) -> np.ndarray:
    """Rows [start, start + N), looped when fewer remain."""
    return loop_to_length(values[start:start + n_steps], n_steps)


def inference_chunks(n_total: int, n_steps: int) -> list[tuple[int, int]]:
    """Consecutive [start, end) chunks of at most n_steps covering 0..T."""
    return [(s, min(s + n_steps, n_total)) for s in range(0, n_total, n_steps)]


def min_max(scores: np.ndarray) -> np.ndarray:
    """(x - min) / (max - min); all zeros for a constant input."""
    span = float(scores.max() - scores.min())
    return np.zeros_like(scores) if span < 1e-12 else (scores - scores.min()) / span


def match_width(audio: torch.Tensor, width: int) -> torch.Tensor:
    """Linear interpolation of the feature axis (B, N, Da) -> (B, N, width)."""
    if audio.shape[-1] == width:
        return audio
    flat = audio.reshape(-1, 1, audio.shape[-1])  # (B*N, 1, Da)
    return F.interpolate(flat, size=width, mode="linear", align_corners=True).reshape(*audio.shape[:2], width)


@METHODS.register("rasl")
class RASLMethod(TorchMethod):
    """RASL (module docstring). `fit` pretrains on unlabelled windows; `predict` gives min-max s^v."""

    Config = RASLConfig
    roles = MODALITIES
    supervised = False
    default_binding = {"visual": "swin", "audio": "panns_cnn14_16k"}
    legacy_config = {"recipe": "paper"}  # a checkpoint saved before recipes existed holds the paper's network
    one_second_grid_defaults = {"window_steps": 30}  # 30-s windows (150 steps is 30 s at the paper's 5 fps)

    def build_module(self) -> nn.Module:
        cfg, recipe = self.config, resolved(self.config)
        return RASLNet(self.feature_dims["visual"], cfg.window_steps, cfg.k, cfg.gamma_init, cfg.attn_bias,
                       recipe.per_step_kernels, recipe.activation, recipe.kernel_init)

    def training_windows(self, train: Sequence[Sample]) -> list[tuple[np.ndarray, np.ndarray]]:
        """(visual (N, Dv), audio (N, Da)) windows of every training video."""
        n = self.config.window_steps
        out = []
        for sample in train:
            v, a = (np.asarray(sample.features[m], dtype=np.float32) for m in MODALITIES)
            out += [(window(v, s, n), window(a, s, n)) for s in training_starts(len(v), n)]
        return out

    def losses(self, rho_v: torch.Tensor, rho_a: torch.Tensor, keep: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every term of Eq. 11 for windows (B, N, d); `keep` (B, N) marks unmasked steps."""
        net, cfg = self.module, self.config
        terms, codes = {}, {}
        for name, rho in (("visual", rho_v), ("audio", rho_a)):
            branch = net.branches[name]
            out = branch(rho)
            codes[name] = out["r"]
            terms[f"{name}_e"] = reconstruction_l1(rho, branch.decode(out["s"], out["r"]))
            if cfg.kpoint_loss:
                terms[f"{name}_r"] = kpoint_loss(out["s"], out["z"], net.projections[name], net.k, cfg.contrast)
            if cfg.aux_loss:
                masked_code = branch.encode(rho * keep.unsqueeze(-1).to(rho.dtype))  # (B, N, c)
                terms[f"{name}_au"] = reconstruction_l1(rho, branch.decode(out["s"], masked_code))
        if cfg.scl_loss:
            terms["scl"] = scl_loss(codes["audio"], codes["visual"], net.gamma, cfg.gamma_mode)
        return terms

    def fit(self, train: Sequence[Sample], val: Sequence[Sample] | None = None, seed: int = 0,
            progress: ProgressFn | None = None) -> dict[str, Any]:
        """Pretrain on windows of `train` under the collapse guard (labels never read; `val` unused).
        Returns the loss history."""
        if self.config.collapse_retries < 0:
            raise ConfigError(f"rasl: collapse_retries must be >= 0, got {self.config.collapse_retries}")
        windows = self.training_windows(train)
        visual = [np.asarray(s.features["visual"], dtype=np.float32) for s in train]
        hint = "Lower the learning rate (--set lr=...) or train longer (--set epochs=...)."
        report = guarded_fit(lambda attempt: self._pretrain(windows, visual, seed, attempt, progress),
                             self.config.collapse_retries, "rasl", hint)
        return {"windows": len(windows), **report, "recipe": dataclasses.asdict(resolved(self.config)),
                "parameters": self.parameter_count(),
                "final_logit_scale": float(logit_scale(self.module.gamma.detach(), self.config.gamma_mode))}

    def _pretrain(self, windows: list, visual: list[np.ndarray], seed: int, attempt: int,
                  progress: ProgressFn | None) -> tuple[dict[str, Any], float]:
        """One pretraining run (attempt > 0: a fresh network, seed + attempt, lr x RETRY_LR_FACTOR ** attempt);
        returns its report and the fraction of training videos with near-constant visual scores."""
        set_seed(seed + attempt)
        if attempt:
            self.module = self.build_module().to(self.device)
        lr = self.config.lr * RETRY_LR_FACTOR**attempt
        rng, generator = np.random.default_rng(seed + attempt), torch.Generator().manual_seed(seed + attempt)
        optimiser = torch.optim.RMSprop(self.module.parameters(), lr=lr)
        run = run_epochs(self.module, self.config.epochs,
                         lambda _: self._train_epoch(windows, optimiser, rng, generator), None, progress)
        collapsed = collapsed_fraction([self.video_scores(v, normalise=False) for v in visual])
        return {"history": run.history, "lr": lr, "near_constant_on_train": collapsed}, collapsed

    def _train_epoch(self, windows: list, optimiser: torch.optim.Optimizer, rng: np.random.Generator,
                     generator: torch.Generator) -> dict[str, float]:
        self.module.train()
        sums: dict[str, float] = {}
        batches = 0
        for chunk in minibatches(windows, self.config.batch_size, rng):
            rho_v = torch.from_numpy(np.stack([v for v, _ in chunk])).to(self.device)  # (B, N, Dv)
            rho_a = match_width(torch.from_numpy(np.stack([a for _, a in chunk])).to(self.device), rho_v.shape[-1])
            keep = random_step_mask(len(chunk), rho_v.shape[1], self.config.mask_ratio, generator).to(self.device)
            terms = self.losses(rho_v, rho_a, keep)
            total = sum(terms.values())
            optimiser.zero_grad()
            total.backward()
            optimiser.step()
            for key, value in {**terms, "total": total}.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach())
            batches += 1
        return {key: value / max(batches, 1) for key, value in sums.items()}

    def forward_scores(self, batch: Batch) -> torch.Tensor:
        """Min-max normalised windowed s^v per video (B, T), fused with the motion prior when prior_weight > 0
        ((rank(s^v) + prior_weight x rank(||v_t||)) / (1 + prior_weight), in [0, 1]); padded steps are 0."""
        scores = torch.zeros(batch.mask.shape)
        weight = resolved(self.config).prior_weight
        for i, length in enumerate(batch.lengths.tolist()):
            visual = batch.features["visual"][i, :length].cpu().numpy()
            s = self.video_scores(visual)
            fused = (rank_unit(s) + weight * rank_unit(motion_prior(visual))) / (1 + weight) if weight > 0 else s
            scores[i, :length] = torch.from_numpy(fused)
        return scores

    @torch.no_grad()
    def video_scores(self, visual: np.ndarray, normalise: bool = True) -> np.ndarray:
        """Visual-branch scores of one video (T, Dv) -> (T,) in [0, 1] (raw s^v without `normalise`:
        min-max would stretch a collapsed, near-constant s^v to [0, 1])."""
        self.module.eval()
        n = self.config.window_steps
        chunks = inference_chunks(len(visual), n)
        windows = torch.from_numpy(np.stack([loop_to_length(visual[s:e], n) for s, e in chunks]))  # (W, N, Dv)
        s = self.module.visual_scores(windows.float().to(self.device)).cpu().numpy()  # (W, N)
        raw = np.concatenate([s[w, : e - start] for w, (start, e) in enumerate(chunks)])
        return min_max(raw.astype(np.float64)) if normalise else raw.astype(np.float64)


def complexity(dim: int = 1024, n_steps: int = 150, k: int = 10) -> dict[str, float]:
    """Parameters (all, visual branch) and multiply-accumulates of one visual inference window."""
    from torch.utils.flop_counter import FlopCounterMode

    net = RASLNet(dim, n_steps, k)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net.visual_scores(torch.zeros(1, n_steps, dim))
    branch = sum(p.numel() for p in net.branches["visual"].parameters())
    return {"parameters": float(sum(p.numel() for p in net.parameters())), "visual_branch_parameters": float(branch),
            "gmacs_per_window": counter.get_total_flops() / 2e9, "gflops_per_window": counter.get_total_flops() / 1e9}

