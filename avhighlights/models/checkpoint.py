"""Self-describing checkpoints: one safetensors file whose metadata holds the method name, its
config, the feature binding (role -> source name/version/dim), free-form training info and, for
checkpoints trained on a benchmark dataset (`bench --save-checkpoints`, `train`), a model card
(metadata key `model_card`: dataset, training/validation ids, recipe, seed, measured numbers, command)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from safetensors import SafetensorError

from avhighlights.core.atomic import atomic_path
from avhighlights.core.errors import CheckpointError, CheckpointMismatchError
from avhighlights.core.registry import config_to_dict
from avhighlights.core.sample import FeatureSource
from avhighlights.models.base import METHODS, HighlightMethod, create_method

if TYPE_CHECKING:  # torch is imported where tensors are written or read, not by metadata readers
    import torch

FORMAT = "avhighlights-checkpoint/1"


@dataclass(frozen=True)
class CheckpointInfo:
    method: str
    config: dict[str, Any]
    binding: dict[str, FeatureSource]
    training: dict[str, Any]
    model_card: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(method: HighlightMethod, path: str | Path, binding: Mapping[str, FeatureSource],
                    training: Mapping[str, Any] | None = None, model_card: Mapping[str, Any] | None = None,
                    dtype: torch.dtype | None = None) -> Path:
    """Write `method` (weights + everything needed to rebuild it) atomically to `path`; `dtype` (e.g.
    torch.float16, half the size) casts its floating-point tensors (loading casts them back to the method's)."""
    from safetensors.torch import save_file

    tensors = {k: _as_tensor(v, dtype) for k, v in method.state_dict().items()}
    meta = {
        "format": FORMAT,
        "method": method.name,
        "config": json.dumps(config_to_dict(method.config)),
        "binding": json.dumps({role: src.to_binding_json() for role, src in binding.items()}, default=str),
        "training": json.dumps(dict(training or {}), default=str),
    }
    if model_card is not None:
        meta["model_card"] = json.dumps(dict(model_card), default=str)
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def read_checkpoint_info(path: str | Path) -> CheckpointInfo:
    """Read only the metadata of a checkpoint."""
    from safetensors import safe_open

    path = _existing(path)
    try:
        with safe_open(str(path), framework="numpy") as handle:  # metadata only: no torch needed
            meta = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({exc})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an avhighlights checkpoint (format {meta.get('format')!r})")
    try:
        return _parse_metadata(meta)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{path}: malformed checkpoint metadata ({type(exc).__name__}: {exc})") from None


def _parse_metadata(meta: Mapping[str, str]) -> CheckpointInfo:
    """The metadata fields as `save_checkpoint` writes them; any other shape raises."""
    binding = {str(r): FeatureSource.from_json(s) for r, s in _json_object(meta, "binding").items()}
    card = _json_object(meta, "model_card") if "model_card" in meta else {}
    return CheckpointInfo(str(meta["method"]), _json_object(meta, "config"), binding, _json_object(meta, "training"),
                          card)


def _json_object(meta: Mapping[str, str], name: str) -> dict[str, Any]:
    value = json.loads(meta[name])
    if not isinstance(value, dict):
        raise TypeError(f"{name!r} is a JSON {type(value).__name__}, not an object")
    return value


def load_checkpoint(path: str | Path, expected_binding: Mapping[str, FeatureSource] | None = None
                    ) -> tuple[HighlightMethod, CheckpointInfo]:
    """Rebuild the method stored at `path`; refuse it when `expected_binding` differs."""
    from safetensors.torch import load_file

    info = read_checkpoint_info(path)
    if expected_binding is not None:
        check_binding(path, info.binding, expected_binding)
    dims = {role: src.dim for role, src in info.binding.items()}
    # fields a checkpoint written before they existed was trained with (e.g. rasl: recipe "paper")
    legacy = getattr(METHODS.get(info.method), "legacy_config", {})
    method = create_method(info.method, dims, {**legacy, **info.config})
    try:
        state = load_file(str(_existing(path)))
        method.load_state_dict(_cast_like(state, method.state_dict()))
    except (SafetensorError, RuntimeError, KeyError) as exc:
        raise CheckpointError(f"{path}: weights do not fit method {info.method!r} ({exc})") from None
    return method, info


def check_binding(path: str | Path, stored: Mapping[str, FeatureSource],
                  expected: Mapping[str, FeatureSource]) -> None:
    """Raise CheckpointMismatchError naming every role whose source, version, width or (when both sides know it)
    full extractor identity differs. A checkpoint written before identities were recorded is compared on what it
    has: name, version and width."""
    problems = []
    for role, src in stored.items():
        have = expected.get(role)
        if have is None:
            problems.append(f"role {role!r} ({src.name} v{src.version}) is not provided")
        elif (have.name, have.version) != (src.name, src.version):
            problems.append(f"role {role!r} was trained on {src.name} v{src.version}, got {have.name} v{have.version}")
        elif src.dim and have.dim and src.dim != have.dim:
            problems.append(f"role {role!r} was trained on {src.dim}-d {src.name} features, got {have.dim}-d")
        elif src.identity is not None and have.identity is not None and src.identity_hash != have.identity_hash:
            differs = ", ".join(_identity_diff(src.identity, have.identity))
            problems.append(f"role {role!r} was trained on {src.name} with identity {_identity_text(src)}, got "
                            f"{_identity_text(have)} (differs in {differs})")
    if problems:
        raise CheckpointMismatchError(f"{path}: extractor mismatch: " + "; ".join(problems))


def _identity_text(src: FeatureSource) -> str:
    return f"{src.identity_hash[:12]} {json.dumps(src.identity, sort_keys=True, default=str)}"


def _identity_diff(a: Mapping[str, Any], b: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the entries that differ between two identities."""
    diffs = []
    for key in sorted(set(a) | set(b)):
        left, right = a.get(key), b.get(key)
        if isinstance(left, Mapping) and isinstance(right, Mapping):
            diffs.extend(_identity_diff(left, right, f"{prefix}{key}."))
        elif json.dumps(left, sort_keys=True, default=str) != json.dumps(right, sort_keys=True, default=str):
            diffs.append(f"{prefix}{key}")
    return diffs


def describe_binding(binding: Mapping[str, FeatureSource]) -> str:
    """'role=name vVERSION, ...' (sorted by role), as errors and reports name a binding."""
    return ", ".join(f"{role}={src.name} v{src.version}" for role, src in sorted(binding.items())) or "(none)"


def _as_tensor(value: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
    import torch

    tensor = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(value))
    if dtype is not None and tensor.is_floating_point():
        tensor = tensor.to(dtype)
    return tensor.detach().cpu().contiguous()


def _cast_like(state: Mapping[str, torch.Tensor], reference: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """`state` with each floating-point tensor in the dtype of the method's own tensor of that name."""
    import torch

    out = {}
    for key, value in state.items():
        ref = reference.get(key)
        same_kind = isinstance(ref, torch.Tensor) and ref.is_floating_point() and value.is_floating_point()
        out[key] = value.to(ref.dtype) if same_kind else value
    return out


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    return path
