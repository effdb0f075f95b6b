"""Checkpoints bind the full extractor identity (config + weights hash), checked when scoring; old checkpoints
without it are checked on name, version and width."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avhighlights.core.errors import CheckpointMismatchError
from avhighlights.core.sample import FeatureSource
from avhighlights.extractors.base import create_extractor
from avhighlights.models.base import create_method
from avhighlights.models.checkpoint import check_binding, read_checkpoint_info, save_checkpoint
from avhighlights.pipeline.score import extractor_sources


def _mobilenet(**overrides):
    return create_extractor("mobilenet_v1_025", {"random_init": True, **overrides}, device="cpu")


def test_binding_records_and_round_trips_the_identity(tmp_path: Path):
    visual, audio = _mobilenet(), create_extractor("loudness", device="cpu")
    binding = extractor_sources({"visual": visual, "audio": audio})
    assert binding["visual"].identity == visual.identity()
    assert binding["visual"].identity_hash == visual.identity_hash()
    method = create_method("joint_va", {"visual": visual.dim, "audio": audio.dim}, {})
    path = save_checkpoint(method, tmp_path / "m.safetensors", binding)
    stored = read_checkpoint_info(path).binding
    assert stored["visual"].identity_hash == visual.identity_hash()  # the same after the JSON round trip
    check_binding(path, stored, extractor_sources({"visual": _mobilenet(batch_size=7), "audio": audio}))  # runtime


def test_a_changed_extractor_config_is_refused_naming_both_identities():
    trained, now = _mobilenet(), _mobilenet(image_size=96)
    with pytest.raises(CheckpointMismatchError) as caught:
        check_binding("m.safetensors", {"visual": trained.feature_source()}, {"visual": now.feature_source()})
    message = str(caught.value)
    assert "m.safetensors: extractor mismatch: role 'visual' was trained on mobilenet_v1_025" in message
    assert trained.identity_hash()[:12] in message and now.identity_hash()[:12] in message
    assert '"image_size": 128' in message and '"image_size": 96' in message
    assert message.endswith("(differs in config.image_size)")


def test_an_old_checkpoint_without_identity_is_checked_on_name_version_and_width():
    now = _mobilenet(image_size=96).feature_source()
    old = FeatureSource.from_json(json.loads(json.dumps(FeatureSource(now.name, now.version, "extractor",
                                                                      now.dim).to_binding_json())))
    assert old.identity is None
    check_binding("old.safetensors", {"visual": old}, {"visual": now})
    wider = FeatureSource(now.name, now.version, "extractor", now.dim + 1001)
    with pytest.raises(CheckpointMismatchError, match=r"trained on 1257-d mobilenet_v1_025 features, got 256-d"):
        check_binding("old.safetensors", {"visual": wider}, {"visual": now})
    with pytest.raises(CheckpointMismatchError, match="trained on mobilenet_v1_025 v0, got mobilenet_v1_025 v"):
        check_binding("old.safetensors", {"visual": FeatureSource(now.name, "0", dim=now.dim)}, {"visual": now})
