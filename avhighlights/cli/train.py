"""`avhighlights train`: one final model on all the training material of a benchmark dataset, written
as a checkpoint with a model card (the library part is evaluation/train.py). This module
imports only argparse at load, so building the CLI parser stays fast."""

from __future__ import annotations

import argparse


def build_train(sub: argparse._SubParsersAction) -> None:
    """The `train` subcommand."""
    from avhighlights.cli.options import add_progress

    p = sub.add_parser("train", help="train one final model on a dataset's training videos and write a checkpoint",
                       description="Train a method on every training video of a benchmark dataset (the train "
                                   "lists of its standard splits, never a test-listed video), holding out a seeded "
                                   "validation part per domain that picks the epoch, and write a checkpoint whose "
                                   "model card names the training and validation videos, the recipe, the seed, "
                                   "the validation numbers and this command. Test numbers come from `avhighlights "
                                   "bench --checkpoint CKPT`.")
    p.add_argument("--data-root", required=True, help="folder holding tvsum/, youtube_highlights/, mrhisum/")
    p.add_argument("--dataset", required=True, help="dataset name (tvsum, youtube_highlights, mrhisum, ...)")
    p.add_argument("--method", required=True, help="a trainable method (see `avhighlights methods`)")
    p.add_argument("--domains", nargs="+", default=None, help="only these categories / domains (one model for all)")
    p.add_argument("--exclude-domains", nargs="+", default=None, metavar="DOMAIN",
                   help="every domain but these (leave-one-domain-out, e.g. --dataset general --exclude-domains "
                        "parkour)")
    p.add_argument("--source", dest="sources", action="append", default=[], metavar="ROLE=SOURCE",
                   help="dataset feature source of a role (repeatable), e.g. visual=umt_i3d_rgb: I3D RGB only, "
                        "no optical flow (default visual=umt_i3d_rgb_flow, audio=umt_panns_cnn14)")
    p.add_argument("--dtype", choices=("float32", "float16"), default="float32",
                   help="precision of the stored weights (float16: half the size; loading casts back)")
    p.add_argument("--out", required=True, help="checkpoint file to write (.safetensors)")
    p.add_argument("--seed", type=int, default=42, help="seed of the validation draw and of the training (default 42)")
    p.add_argument("--val-fraction", type=float, default=0.15,
                   help="fraction of each domain's training videos held out for validation (default 0.15; at "
                        "least one video per domain of two or more)")
    p.add_argument("--protocol", default=None, help="protocol whose metrics the validation numbers use (default: "
                                                    "the dataset's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="method config override; VALUE is parsed as JSON when it can be (repeatable)")
    add_progress(p)
    p.set_defaults(handler=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    import sys

    from avhighlights.core.overrides import parse_overrides, parse_pairs
    from avhighlights.evaluation.train import train_checkpoint
    from avhighlights.pipeline.progress import Progress

    progress = Progress(args.progress)
    report = train_checkpoint(args.data_root, args.dataset, args.method, args.out, args.domains, args.seed,
                              args.val_fraction, parse_overrides(args.overrides), args.protocol, progress,
                              args.exclude_domains, parse_pairs(args.sources, "--source"), args.dtype)
    progress.close()
    card = report.card
    progress.event("train", checkpoint=str(report.checkpoint), method=report.method,
                   train_videos=len(card["train_ids"]), val_videos=len(card["val_ids"]),
                   validation_metrics=report.validation_metrics, selected_epoch=card["recipe"]["selected_epoch"],
                   seconds=round(report.seconds, 3))
    if progress.mode == "json":
        return 0
    numbers = ", ".join(f"{k} {v:.4f}" for k, v in (report.validation_metrics or {}).items() if v is not None)
    print(f"trained {report.method} on {len(card['train_ids'])} videos of {card['dataset']}, validated on "
          f"{len(card['val_ids'])} ({numbers or 'no validation numbers'}; selected epoch "
          f"{card['recipe']['selected_epoch']}) in {report.seconds:.1f} s -> {report.checkpoint}")
    print(f"test numbers: avhighlights bench --checkpoint {report.checkpoint} --data-root {args.data_root} "
          f"--dataset {card['dataset']}" + (" --domains " + " ".join(card["domains"]) if card["domains"] else ""))
    if card["near_constant_fraction"] > 0:
        print(f"warning: {report.checkpoint}: near-constant scores on {card['near_constant_fraction']:.0%} of the "
              "validation videos (a collapsed model); retrain with a lower learning rate (--set lr=...)",
              file=sys.stderr)
    return 0
