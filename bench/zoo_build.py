"""Finish a zoo model: measure a trained checkpoint's test numbers with `bench --checkpoint` on the `general` test
lists (TVSum QD-DETR test videos, each YouTube domain's UMT test list: never in training), measure `feature_norm` and
`random` on the same videos, join the leave-one-domain-out table (bench/results/zoo_lodo/lodo.json), write all of it
into the checkpoint's model card (safetensors metadata; the weights are not touched) and the model's entry in
avhighlights/zoo/index.json.

The checkpoint itself comes from the `train` command in ZOO (one fixed recipe: the method's defaults, seed 42):

    avhighlights train --data-root ../shared/data --dataset general --method joint_va --seed 42 --val-fraction 0.15 \\
        --dtype float16 --out avhighlights/zoo/joint_va_general.safetensors
    python3 bench/zoo_build.py --data-root ../shared/data joint_va_general
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from avhighlights.core.atomic import atomic_path, write_json
from avhighlights.evaluation.bench import run_bench
from avhighlights.evaluation.bench_checkpoints import finite, override_args
from avhighlights.evaluation.general_data import GeneralDataset
from avhighlights.models.checkpoint import describe_binding, read_checkpoint_info

ZOO_DIR = Path("avhighlights/zoo")
INDEX_FORMAT = "avhighlights-zoo/1"
LODO_JSON = Path("bench/results/zoo_lodo/lodo.json")
RESULTS = Path("bench/results/zoo")
TVSUM_GROUPS = ("BK", "BT", "DS", "FM", "GA", "MS", "PK", "PR", "VT", "VU")
YOUTUBE_GROUPS = ("dog", "gymnastics", "parkour", "skating")

JOINT_VA_EPOCHS_NOTE = (
    "Joint-VA's measured defaults (Adam 5e-4, batch 4) with 10 epochs instead of 40: on one YouTube domain (19-40 "
    "training videos, 5-10 batches per epoch) the 40 default epochs are 200-400 Adam steps; on `general` (~130 "
    "training videos, ~33 batches per epoch) 10 epochs are ~330 steps, the same number of updates, and the 2-core "
    "CPU shared with other jobs (about 0.1 core per training process) did not allow 40. The epoch is picked on the "
    "validation part held out from the training material.")

ZOO: dict[str, dict[str, Any]] = {
    "joint_va_general": {
        "method": "joint_va", "sources": {}, "overrides": {"epochs": 10}, "default": True,
        "recipe_note": JOINT_VA_EPOCHS_NOTE,
        "summary": "Joint-VA on I3D rgb+flow and PANNs audio, trained on TVSum + the 4 YouTube Highlights domains"},
    "hpcl_general": {
        "method": "hpcl", "sources": {}, "overrides": {}, "default": True,
        "recipe_note": "HPCL's defaults as they are (spec config: Adam 1e-4, 20 epochs, batch 1, one balanced "
                       "20-segment draw per video per epoch); the epoch is picked on the held-out validation part.",
        "summary": "HPCL on I3D rgb+flow and PANNs audio, trained on TVSum + the 4 YouTube Highlights domains"},
    "joint_va_rgb": {
        "method": "joint_va", "sources": {"visual": "umt_i3d_rgb"}, "overrides": {"epochs": 10}, "default": False,
        "recipe_note": JOINT_VA_EPOCHS_NOTE,
        "summary": "Joint-VA visual-only variant without optical flow (I3D RGB + PANNs audio), for machines "
                   "without a GPU; trained on TVSum + the 4 YouTube Highlights domains"},
}

LABELS_NOTE = ("TVSum labels are the annotator mean rescaled to [0, 1] (soft), YouTube Highlights labels match > 0 "
               "(binary). {method} binarises each TVSum video's soft labels to its top 50 % of steps "
               "(binarise_labels) and keeps the binary YouTube labels, so both datasets reach its loss as binary "
               "per-step targets; every training video weighs by its number of steps.")
BRIDGE_NOTE = ("Trained on the UMT-release feature files ({binding}); on raw video `avhighlights score` computes "
               "these sources with the bridge extractors that reproduce them (i3d / i3d_rgb, panns_cnn14_2s at "
               "32 kHz), which need their pretrained weights (exit 4 offline, naming each missing file); "
               "`avhighlights bench --checkpoint` evaluates it on the released features.")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def source_args(sources: Mapping[str, str]) -> list[str]:
    return [arg for role, name in sorted(sources.items()) for arg in ("--source", f"{role}={name}")]


def overall(result, metric: str) -> float:
    return result.summary["overall"][metric]["mean"]


def per_group(result, metric: str, groups: Sequence[str]) -> dict[str, float]:
    return {g: result.summary["groups"][g][metric]["mean"] for g in groups if g in result.summary["groups"]}


def test_numbers(data_root: str, path: Path, name: str, sources: Mapping[str, str], seed: int,
                 results: Path = RESULTS) -> dict[str, Any]:
    """bench --checkpoint on the general test lists, and feature_norm / random (run seed) on the same videos."""
    out: dict[str, Any] = {}
    runs = {"model": dict(method=None, checkpoint=path, out_dir=results / name),
            "feature_norm": dict(method="feature_norm", out_dir=results / f"{name}-feature_norm"),
            "random": dict(method="random", out_dir=results / f"{name}-random")}
    for key, kwargs in runs.items():
        result = run_bench(data_root, "general", seeds=[seed], sources=dict(sources) or None, **kwargs)
        out[key] = {"tvsum_top5_test": overall(result, "top5_map_umt"), "youtube_test_mean": overall(result, "map"),
                    "tvsum_top5_per_category": per_group(result, "top5_map_umt", TVSUM_GROUPS),
                    "youtube_per_domain": per_group(result, "map", YOUTUBE_GROUPS),
                    "result": str(result.json_path)}
    return out


def lodo_numbers(variant: str) -> dict[str, Any] | None:
    """The LODO table of `variant` (bench/zoo_lodo.py), or None before it ran."""
    if not LODO_JSON.is_file():
        return None
    data = json.loads(LODO_JSON.read_text())
    if variant not in data["table"]:
        return None
    means = data["mean_of_domains_per_seed"][variant]
    model = next(n for n in means if n not in ("feature_norm", "random"))
    return {"per_domain_per_seed": data["table"][variant], "mean_of_domains_per_seed": means,
            "youtube_lodo_test_mean": _mean(means[model]["test"]),
            "youtube_lodo_test_std": _std(means[model]["test"]),
            "youtube_lodo_all_mean": _mean(means[model]["all"]),
            "feature_norm_lodo_test_mean": _mean(means["feature_norm"]["test"]),
            "feature_norm_lodo_all_mean": _mean(means["feature_norm"]["all"]),
            "paired_vs_feature_norm": data.get("paired_vs_feature_norm", {}).get(variant),
            "seeds_with_all_domains": len(means[model]["test"]),
            "note": "fractions in [0, 1]; per held-out domain d: trained on `general` without d, tested on d's UMT "
                    "test list (`test`) and all of d's videos (`all`); std = sample std over seeds (ddof 1); "
                    "paired_vs_feature_norm: per seed, model minus feature_norm on the same videos",
            "runs": [r for r in data["runs"] if r["variant"] == variant], "table": str(LODO_JSON.with_suffix(".md"))}


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _std(values: Sequence[float]) -> float | None:
    """Sample std (ddof 1); None below two values."""
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5


def lodo_index_numbers(lodo: Mapping[str, Any] | None) -> dict[str, float | None]:
    """The index's LODO numbers: the model's mean of 4 held-out domains (test lists), its std over seeds, the seeds,
    and feature_norm's mean on the same videos (None before the LODO ran)."""
    lodo = lodo or {}
    return {"lodo_youtube_mean": lodo.get("youtube_lodo_test_mean"),
            "lodo_youtube_std": lodo.get("youtube_lodo_test_std"), "lodo_seeds": lodo.get("seeds_with_all_domains"),
            "lodo_feature_norm_mean": lodo.get("feature_norm_lodo_test_mean")}


def rewrite_card(path: Path, card: Mapping[str, Any]) -> None:
    """Replace the checkpoint's `model_card` metadata; tensors and other metadata are written back unchanged. An
    unchanged card leaves the file alone (the metadata order of a rewrite is arbitrary, so its bytes would change)."""
    with safe_open(str(path), framework="pt") as handle:
        meta = dict(handle.metadata() or {})
    text = json.dumps(finite(dict(card)), default=str)
    if meta.get("model_card") == text:
        return
    tensors = load_file(str(path))
    meta["model_card"] = text
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def update_index(zoo_dir: Path, entry: Mapping[str, Any]) -> Path:
    path = zoo_dir / "index.json"
    index = json.loads(path.read_text()) if path.is_file() else {"format": INDEX_FORMAT, "models": []}
    models = [m for m in index["models"] if m["name"] != entry["name"]] + [dict(entry)]
    index["models"] = sorted(models, key=lambda m: list(ZOO).index(m["name"]) if m["name"] in ZOO else len(ZOO))
    return write_json(path, index)


def measured(data_root: str, path: Path, name: str, spec: Mapping[str, Any], card: Mapping[str, Any],
             results: Path, reuse: bool) -> dict[str, Any]:
    """The card's test numbers and references: measured now, or with `reuse` those the card already holds."""
    keys = ("tvsum_top5_test", "youtube_test_mean", "tvsum_top5_per_category", "youtube_per_domain")
    if reuse and "youtube_test_mean" in (card.get("test_metrics") or {}):
        return {k: card[k] for k in ("test_metrics", "references_on_test_videos")}
    numbers = test_numbers(data_root, path, name, spec["sources"], card["seed"], results)
    return {"test_metrics": {k: numbers["model"][k] for k in keys},
            "references_on_test_videos": {ref: {k: numbers[ref][k] for k in keys}
                                          for ref in ("feature_norm", "random")}}


def build(name: str, data_root: str, zoo_dir: Path = ZOO_DIR, results: Path = RESULTS,
          reuse_test_numbers: bool = False) -> dict[str, Any]:
    spec = ZOO[name]
    path = zoo_dir / f"{name}.safetensors"
    info = read_checkpoint_info(path)
    card = dict(info.model_card)
    variant = (spec["method"] + "".join(f"+{r}={s}" for r, s in sorted(spec["sources"].items()))
               + "".join(f"+{k}={json.dumps(v)}" for k, v in sorted(spec["overrides"].items())))
    numbers = measured(data_root, path, name, spec, card, results, reuse_test_numbers)
    lodo = lodo_numbers(variant)
    test_cmd = ["avhighlights", "bench", "--data-root", data_root, "--dataset", "general", "--checkpoint", str(path)]
    lodo_cmd = ["python3", "bench/zoo_lodo.py", "--data-root", data_root, "--method", spec["method"],
                *source_args(spec["sources"]), *override_args(spec["overrides"]), "--seeds", "42", "123", "456", "777",
                "999"]
    test_ids = sorted(v for split in GeneralDataset(data_root, None, spec["sources"] or None).splits()
                      for v in split.test_ids)
    card.update({
        "test_ids": test_ids,
        "zoo": {"name": name, "summary": spec["summary"], "default_for_method": spec["default"]},
        "recipe_note": spec["recipe_note"],
        **numbers,
        "test_metrics_note": "fractions in [0, 1]; the test lists of TVSum (QD-DETR, 1 video per category) and of each "
                             "YouTube domain (UMT): none of these videos is in train_ids or val_ids",
        "test_command": " ".join(test_cmd),
        "references_command": " ".join(test_cmd[:-2] + ["--method", "feature_norm|random", "--seed-values",
                                                        str(card["seed"])] + source_args(spec["sources"])),
        "lodo": lodo, "lodo_command": " ".join(lodo_cmd) + " && python3 bench/zoo_lodo.py --report",
        "labels": LABELS_NOTE.format(method=spec["method"]),
        "binding": describe_binding(info.binding),
        "raw_video_bridge": BRIDGE_NOTE.format(binding=describe_binding(info.binding)),
        "weights_dtype": str(next(iter(load_file(str(path)).values())).dtype).replace("torch.", ""),
    })
    rewrite_card(path, card)
    entry = {"name": name, "method": spec["method"], "file": path.name, "sha256": sha256(path),
             "default": spec["default"], "summary": spec["summary"],
             "numbers": {"youtube_test_mean": card["test_metrics"]["youtube_test_mean"],
                         "tvsum_top5_test": card["test_metrics"]["tvsum_top5_test"],
                         **lodo_index_numbers(lodo)}}
    update_index(zoo_dir, entry)
    return entry


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="+", choices=sorted(ZOO))
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--zoo-dir", type=Path, default=ZOO_DIR, help="folder of the checkpoints and index.json")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the bench results")
    parser.add_argument("--reuse-test-numbers", action="store_true",
                        help="keep the test numbers the card holds (they were measured on these weights); only the "
                        "LODO table and notes are refreshed")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for name in args.names:
        print(json.dumps(build(name, args.data_root, args.zoo_dir, args.results, args.reuse_test_numbers)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
