"""RASL ablation fits (issue #14): one pretraining per (variant, seed), scored two ways from the same network,
so that the label-free fusion with the motion prior costs no second fit.

For each seed of the dataset's protocol (default: the cross-dataset ones) the `bench` harness's own pieces
train RASL with the variant's `--set` overrides (prior_weight forced to 0: the network alone), predict the
test videos (labels stripped) and evaluate them; the same network's scores are then fused with the motion
prior, rank(s^v) + w x rank(||v_t||) (`models/recurrence_prior.py`, what `--set prior_weight=w` does at
inference), for each `--prior-weights` w fixed in advance (no weight is chosen on the labels). Each scoring
is written as a standard bench result folder (result.json + results.md): `<dataset>-rasl_<variant>-seed<S>`
and `<dataset>-rasl_<variant>_prior<w>-seed<S>`; fit time, collapsed fractions and the loss history are in
their fit reports.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python3 bench/rasl_ablation.py --data-root ../shared/data \\
        --dataset tvsum_to_youtube --variant sigmoid_shared --seeds 42 \\
        --set window_steps=32 --set epochs=3 --set recipe=paper --set activation=sigmoid --set per_step_kernels=false
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from avhighlights.core.atomic import write_json
from avhighlights.core.near_constant import CollapsedFitError
from avhighlights.core.overrides import parse_overrides
from avhighlights.core.registry import config_to_dict
from avhighlights.evaluation.bench import (
    COLLAPSED_KEY,
    BenchResult,
    load_method_modules,
    machine_info,
    open_dataset,
    predict_all,
    resolve_protocol,
    train_split,
    write_result,
)
from avhighlights.evaluation.report import summarise
from avhighlights.models.base import collapsed_fraction
from avhighlights.models.recurrence_prior import motion_prior, rank_unit


def fused(preds: list[np.ndarray], test: list, weight: float) -> list[np.ndarray]:
    """(rank(s^v) + weight x rank(motion prior)) / (1 + weight) per test video (RASLMethod.forward_scores with
    prior_weight; the division changes no ranking, so runs made before it score the same)."""
    return [(rank_unit(p) + weight * rank_unit(motion_prior(s.features["visual"]))) / (1 + weight)
            for p, s in zip(preds, test, strict=True)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--dataset", required=True, help="tvsum_to_youtube or youtube_to_tvsum")
    parser.add_argument("--protocol", default=None)
    parser.add_argument("--variant", required=True, help="name used in the result folders")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--prior-weights", type=float, nargs="*", default=[1.0])
    parser.add_argument("--out-root", default="bench/results")
    args = parser.parse_args(argv)
    load_method_modules()
    overrides = {**parse_overrides(args.overrides), "prior_weight": 0.0}
    ds = open_dataset(args.dataset, args.data_root, None, None)
    proto = resolve_protocol(ds, ds.name, args.protocol)
    label_keys = getattr(ds, "label_meta_keys", ())
    scorings = {f"rasl_{args.variant}": None, **{f"rasl_{args.variant}_prior{w:g}": w for w in args.prior_weights}}
    for seed in args.seeds:
        per_seed: dict[str, dict] = {name: {} for name in scorings}
        splits, fits, configs = [], {}, {}
        t0 = time.monotonic()
        for split in proto.splits(ds, seed):
            test = ds.samples(split.test_ids)
            t_fit = time.monotonic()
            try:
                method, report = train_split("rasl", overrides, ds, split, seed, test)
            except CollapsedFitError as error:  # recorded, not scored: a collapsed fit is never used
                out = Path(args.out_root) / f"{ds.name}-rasl_{args.variant}-seed{seed}"
                write_json(out / "collapsed.json", {"variant": args.variant, "seed": seed, "split": split.name,
                                                    "overrides": overrides, "error": str(error),
                                                    "fit_s": round(time.monotonic() - t_fit, 1)})
                print(args.variant, seed, split.name, "COLLAPSED:", error, flush=True)
                return 0
            report = {**report, "fit_s": round(time.monotonic() - t_fit, 1)}
            preds = predict_all(method, test, label_keys)
            for name, weight in scorings.items():
                scored = preds if weight is None else fused(preds, test, weight)
                per_seed[name][split.name] = {**proto.evaluate(test, scored), COLLAPSED_KEY: collapsed_fraction(preds)}
                cfg = config_to_dict(dataclasses.replace(method.config, prior_weight=weight or 0.0))
                configs[name] = cfg
            splits.append(split.to_json())
            fits[split.name] = report
            print(args.variant, seed, split.name, {k: round(v, 4) for k, v in per_seed[f"rasl_{args.variant}"]
                                                   [split.name].items()}, f"fit {report['fit_s']} s", flush=True)
        for name, weight in scorings.items():
            method_overrides = {**overrides, "prior_weight": weight or 0.0}
            config = {"dataset": ds.name, "protocol": proto.name, "method": "rasl", "data_root": str(args.data_root),
                      "domains": None, "method_overrides": method_overrides, "method_config": configs[name],
                      "feature_sources": {r: s.to_json() for r, s in ds.feature_sources.items()},
                      "command": "PYTHONPATH=$PWD OMP_NUM_THREADS=1 python3 bench/rasl_ablation.py " + " ".join(
                          sys.argv[1:] if argv is None else argv)}
            result = BenchResult(config, [seed], proto.notes, {str(seed): splits}, {seed: per_seed[name]},
                                 summarise({seed: per_seed[name]}, list(proto.metrics), proto.std_over), 0.0,
                                 machine_info(), {}, {str(seed): fits})
            result.wall_s = round(time.monotonic() - t0, 3)
            out = write_result(result, proto, Path(args.out_root) / f"{ds.name}-{name}-seed{seed}")
            print(name, seed, "->", out.json_path, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
