"""Convert the TF.js export of TF-slim `mobilenet_v1_0.25_128` (weights_manifest.json + its float32 shard) into the
torch state dict `mobilenet_v1_net.MobileNetV1` loads (`mobilenet_v1_025_imagenet_tfslim.pt`).

    python3 -m avhighlights.extractors.mobilenet_v1_convert weights_manifest.json --out DIR

The shard files are read from the manifest's folder. TF names map onto torch keys as: Conv2d_0 -> features.0,
Conv2d_<k>_depthwise -> features.<2k-1>, Conv2d_<k>_pointwise -> features.<2k>, Logits/Conv2d_1c_1x1 -> logits;
kernels go from HWIO (depthwise: HWC1) to OIHW, BatchNorm gamma/beta/moving_mean/moving_variance to
weight/bias/running_mean/running_var. Saved under the output's name, the result has the registered sha256.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import torch

from avhighlights.core.errors import CheckpointError

BN_KEYS = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}
_LAYER = re.compile(r"^MobilenetV1/Conv2d_(\d+)(?:_(depthwise|pointwise))?/(.+)$")


def read_tfjs(manifest_path: Path) -> dict[str, np.ndarray]:
    """TF name -> float32 array, from a TF.js weights manifest and the shard files next to it."""
    arrays = {}
    for group in json.loads(manifest_path.read_text()):
        blob = b"".join((manifest_path.parent / name).read_bytes() for name in group["paths"])
        offset = 0
        for weight in group["weights"]:
            if weight["dtype"] != "float32" or "quantization" in weight:
                raise CheckpointError(f"{manifest_path}: {weight['name']} is not plain float32")
            count = int(np.prod(weight["shape"], dtype=np.int64))
            arrays[weight["name"]] = np.frombuffer(blob, "<f4", count, offset).reshape(weight["shape"])
            offset += 4 * count
        if offset != len(blob):
            raise CheckpointError(f"{manifest_path}: shards hold {len(blob)} bytes, the manifest describes {offset}")
    return arrays


def torch_key(tf_name: str) -> str:
    """'MobilenetV1/Conv2d_3_pointwise/BatchNorm/gamma' -> 'features.6.bn.weight'."""
    if tf_name.startswith("MobilenetV1/Logits/Conv2d_1c_1x1/"):
        return "logits." + {"weights": "weight", "biases": "bias"}[tf_name.rsplit("/", 1)[1]]
    match = _LAYER.match(tf_name)
    if match is None:
        raise CheckpointError(f"unexpected TF-slim MobileNet tensor {tf_name!r}")
    block, kind, rest = int(match[1]), match[2], match[3]
    index = 0 if kind is None else 2 * block - (kind == "depthwise")
    if rest in ("weights", "depthwise_weights"):
        return f"features.{index}.conv.weight"
    return f"features.{index}.bn.{BN_KEYS[rest.removeprefix('BatchNorm/')]}"


def to_state_dict(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Torch tensors in MobileNetV1's key order (BatchNorm num_batches_tracked = 0)."""
    converted = {}
    for name, array in arrays.items():
        key, value = torch_key(name), torch.from_numpy(array.copy())
        if value.ndim == 4:
            value = value.permute(2, 3, 0, 1) if "depthwise" in name else value.permute(3, 2, 0, 1)
        converted[key] = value.contiguous()
    from avhighlights.extractors.mobilenet_v1_net import MobileNetV1

    template = MobileNetV1().state_dict()
    state = {}
    for key, ref in template.items():
        state[key] = torch.tensor(0, dtype=torch.long) if key.endswith("num_batches_tracked") else converted.pop(key)
        if state[key].shape != ref.shape:
            raise CheckpointError(f"{key}: converted shape {tuple(state[key].shape)}, expected {tuple(ref.shape)}")
    if converted:
        raise CheckpointError(f"tensors without a place in MobileNetV1: {sorted(converted)}")
    return state


def convert(manifest_path: str | Path, out_path: str | Path) -> Path:
    """Write the converted state dict to `out_path` atomically. torch.save names its zip records after the file,
    so it writes a file of the final name in a private folder next to `out_path`, then renames it."""
    out_path = Path(out_path)
    state = to_state_dict(read_tfjs(Path(manifest_path)))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".convert-", dir=out_path.parent) as folder:
        staged = Path(folder) / out_path.name
        torch.save(state, str(staged))
        os.replace(staged, out_path)
    return out_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", type=Path, help="weights_manifest.json (its shard files next to it)")
    parser.add_argument("--out", type=Path, default=Path("mobilenet_v1_025_imagenet_tfslim.pt"))
    args = parser.parse_args(argv)
    print(convert(args.manifest, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
