"""The TF.js -> torch conversion of MobileNet-v1 0.25: a TF-layout export written from a seeded network converts
back to exactly that network's state dict; a torn shard is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from avhighlights.core.errors import CheckpointError
from avhighlights.extractors.mobilenet_v1_convert import convert, torch_key
from avhighlights.extractors.mobilenet_v1_net import MobileNetV1
from avhighlights.extractors.weights import load_state_dict

BN_TF = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}


def _tf_name(index: int, part: str, field: str) -> str:
    layer = "Conv2d_0" if index == 0 else f"Conv2d_{(index + 1) // 2}_{'depthwise' if index % 2 else 'pointwise'}"
    if part == "conv":
        return f"MobilenetV1/{layer}/{'depthwise_weights' if index % 2 else 'weights'}"
    return f"MobilenetV1/{layer}/BatchNorm/{BN_TF[field]}"


def _tfjs_export(state: dict[str, torch.Tensor], folder) -> None:
    """Write `state` the way TF.js stores TF-slim MobileNet: HWIO kernels (depthwise HWC1), one float32 shard."""
    weights, blobs = [], []
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        if key.startswith("logits."):
            name = "MobilenetV1/Logits/Conv2d_1c_1x1/" + ("weights" if key.endswith("weight") else "biases")
        else:
            _, index, part, field = key.split(".")
            name = _tf_name(int(index), part, field)
        array = value.numpy()
        if array.ndim == 4:
            array = array.transpose(2, 3, 0, 1) if "depthwise" in name else array.transpose(2, 3, 1, 0)
        weights.append({"name": name, "shape": list(array.shape), "dtype": "float32"})
        blobs.append(np.ascontiguousarray(array, dtype="<f4").tobytes())
    (folder / "group1-shard1of1").write_bytes(b"".join(blobs))
    (folder / "weights_manifest.json").write_text(json.dumps([{"paths": ["group1-shard1of1"], "weights": weights}]))


def test_tf_names_map_onto_the_network_keys():
    assert torch_key("MobilenetV1/Conv2d_0/weights") == "features.0.conv.weight"
    assert torch_key("MobilenetV1/Conv2d_1_depthwise/depthwise_weights") == "features.1.conv.weight"
    assert torch_key("MobilenetV1/Conv2d_13_pointwise/BatchNorm/moving_variance") == "features.26.bn.running_var"
    assert torch_key("MobilenetV1/Logits/Conv2d_1c_1x1/biases") == "logits.bias"


def test_roundtrip_reproduces_the_state_dict(tmp_path):
    torch.manual_seed(0)
    net = MobileNetV1()
    for module in net.modules():  # non-trivial BatchNorm statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    state = net.state_dict()
    _tfjs_export(state, tmp_path)
    out = convert(tmp_path / "weights_manifest.json", tmp_path / "out" / "mobilenet_v1_025_imagenet_tfslim.pt")
    loaded = load_state_dict(out)
    assert list(loaded) == list(state)
    assert all(torch.equal(loaded[k], state[k]) for k in state if not k.endswith("num_batches_tracked"))
    MobileNetV1().load_state_dict(loaded, strict=True)
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no staging folder left behind


def test_torn_shard_is_refused(tmp_path):
    _tfjs_export(MobileNetV1().state_dict(), tmp_path)
    shard = tmp_path / "group1-shard1of1"
    shard.write_bytes(shard.read_bytes() + b"\0\0\0\0")
    with pytest.raises(CheckpointError, match="shards hold"):
        convert(tmp_path / "weights_manifest.json", tmp_path / "out.pt")
