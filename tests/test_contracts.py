"""Registry, config building, atomic writes and self-describing checkpoints."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from avhighlights.core.atomic import atomic_path, write_json
from avhighlights.core.errors import CheckpointError, CheckpointMismatchError, ConfigError, RegistryError
from avhighlights.core.registry import Registry, build_config, check_option_type, field_type_hints
from avhighlights.core.sample import FeatureSource, Sample
from avhighlights.models.base import METHODS
from avhighlights.models.checkpoint import load_checkpoint, read_checkpoint_info, save_checkpoint
from avhighlights.models.torch_method import TorchMethod, collate


@dataclass(frozen=True)
class _LinearConfig:
    hidden: int = 4
    scale: float = 1.0


@dataclass(frozen=True)
class _TypedConfig:
    names: tuple[str, ...] = ("a",)
    lr: float | None = None
    steps: int = 1
    flag: bool = False


@METHODS.register("test_linear_contract")
class _LinearMethod(TorchMethod):
    """A real (tiny) torch method used to exercise checkpoints end to end."""

    Config = _LinearConfig
    roles = ("visual",)

    def build_module(self) -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(self.feature_dims["visual"], self.config.hidden),
                                   torch.nn.Tanh(), torch.nn.Linear(self.config.hidden, 1))

    def forward_scores(self, batch):
        return self.module(batch.features["visual"]).squeeze(-1) * self.config.scale


def test_registry_reports_known_names():
    reg: Registry = Registry("widget")

    @reg.register("a")
    class A:  # noqa: B903
        pass

    assert reg.get("a") is A and A.name == "a" and "a" in reg
    with pytest.raises(RegistryError, match="unknown widget 'b'; registered: a"):
        reg.get("b")


def test_build_config_rejects_unknown_keys_and_freezes_lists():
    cfg = build_config(_LinearConfig, {"hidden": 8})
    assert cfg.hidden == 8 and cfg.scale == 1.0
    with pytest.raises(ConfigError, match="unknown option"):
        build_config(_LinearConfig, {"hiden": 8})


@pytest.mark.parametrize(("option", "value", "expected"), [
    ("names", "[a,b]", "option 'names' expects tuple\\[str, ...\\] \\(a JSON list .* --set names='\\[\"a\",\"b\"\\]'"),
    ("steps", "3", "option 'steps' expects int, got str '3'"),
    ("steps", True, "option 'steps' expects int, got bool True"),
    ("lr", "1e-3", "option 'lr' expects float \\| None, got str"),
    ("flag", 1, "option 'flag' expects bool, got int 1"),
])
def test_build_config_names_the_option_given_a_value_of_the_wrong_type(option, value, expected):
    with pytest.raises(ConfigError, match=expected):
        build_config(_TypedConfig, {option: value})


def test_build_config_accepts_ints_for_floats_none_for_optionals_and_lists_for_tuples():
    cfg = build_config(_TypedConfig, {"lr": 1, "names": ["x", "y"], "steps": 2, "flag": True})
    assert cfg == _TypedConfig(names=("x", "y"), lr=1, steps=2, flag=True)
    assert build_config(_TypedConfig, {"lr": None}).lr is None


def test_every_registered_config_has_checkable_fields_and_defaults_that_pass():
    import avhighlights.extractors  # noqa: F401  (registers the extractors)
    from avhighlights.extractors.base import EXTRACTORS

    for registry in (EXTRACTORS, METHODS):
        for name in registry.names():
            config_cls = registry.get(name).Config
            hints, defaults = field_type_hints(config_cls), config_cls()
            for field in dataclasses.fields(config_cls):
                assert field.name in hints, (name, field.name)
                check_option_type(config_cls, field.name, hints[field.name], getattr(defaults, field.name))


def test_atomic_path_leaves_nothing_on_failure(tmp_path: Path):
    target = tmp_path / "out.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half written")
            raise RuntimeError("boom")
    assert target.read_text().strip().startswith("{") and '"v": 1' in target.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def _sample(t: int = 6, d: int = 3) -> Sample:
    return Sample("v", {"visual": np.arange(t * d, dtype=np.float32).reshape(t, d) / 10}, 1.0)


def test_checkpoint_round_trip_restores_identical_predictions(tmp_path: Path):
    method = METHODS.get("test_linear_contract")(_LinearConfig(hidden=5, scale=2.0), {"visual": 3})
    binding = {"visual": FeatureSource("r3d34", "1", "extractor", 3)}
    path = save_checkpoint(method, tmp_path / "m.safetensors", binding, {"epochs": 3})
    info = read_checkpoint_info(path)
    assert info.method == "test_linear_contract" and info.config == {"hidden": 5, "scale": 2.0}
    assert info.binding == binding and info.training == {"epochs": 3}
    restored, _ = load_checkpoint(path, expected_binding=binding)
    np.testing.assert_array_equal(restored.predict(_sample()), method.predict(_sample()))


def test_checkpoint_refuses_other_extractors(tmp_path: Path):
    method = METHODS.get("test_linear_contract")(_LinearConfig(), {"visual": 3})
    path = save_checkpoint(method, tmp_path / "m.safetensors", {"visual": FeatureSource("r3d34", "1", dim=3)})
    with pytest.raises(CheckpointMismatchError, match="trained on r3d34 v1, got swin v1"):
        load_checkpoint(path, expected_binding={"visual": FeatureSource("swin", "1", dim=3)})
    with pytest.raises(CheckpointMismatchError, match="not provided"):
        load_checkpoint(path, expected_binding={})


def test_checkpoint_errors_name_the_file(tmp_path: Path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        read_checkpoint_info(bad)
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint_info(tmp_path / "missing.safetensors")


def test_collate_pads_and_masks():
    a, b = _sample(4), _sample(2)
    batch = collate([a, b], ["visual"])
    assert batch.features["visual"].shape == (2, 4, 3)
    assert batch.mask.tolist() == [[True] * 4, [True, True, False, False]]
    assert torch.all(batch.features["visual"][1, 2:] == 0) and batch.labels is None
