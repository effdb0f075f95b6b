"""The `avhighlights bench` options, kept free of heavy imports so that building the CLI parser stays fast
(the harness itself, with torch and scikit-learn, is imported only when `bench` runs)."""

from __future__ import annotations

import argparse


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """The `avhighlights bench` options."""
    parser.add_argument("--data-root", required=True, help="folder holding tvsum/, youtube_highlights/, mrhisum/")
    parser.add_argument("--dataset", required=True,
                        help="dataset name: tvsum, youtube_highlights, mrhisum, folder, tvsum_to_youtube, "
                        "youtube_to_tvsum, or another registered one (an unknown name lists them)")
    parser.add_argument("--method", default=None,
                        help="registered method name (see `avhighlights methods`); required unless --checkpoint")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds: the first N of 42 123 456 777 999 "
                        "(then 1000+i); default 5 (with --checkpoint: the seed it was trained with)")
    parser.add_argument("--seed-values", type=int, nargs="+", default=None, metavar="SEED",
                        help="these seeds instead of --seeds N (e.g. one seed per machine; join the parts with "
                        "`avhighlights bench-merge`)")
    parser.add_argument("--domains", nargs="+", default=None, help="only these categories / domains")
    parser.add_argument("--source", dest="sources", action="append", default=[], metavar="ROLE=SOURCE",
                        help="dataset feature source of a role (repeatable), e.g. visual=umt_i3d_rgb (I3D RGB, no "
                        "flow); with --checkpoint the checkpoint's own sources by default")
    parser.add_argument("--protocol", default=None,
                        help="protocol: umt_top5, davihd_5fold, per_domain, mrhisum_official, "
                        "folder_1fps, tvsum_random80, xdata_tvsum_top5, xdata_youtube (an unknown name lists "
                        "them); default: the dataset's (tvsum: umt_top5, youtube_highlights: per_domain)")
    parser.add_argument("--out", default=None,
                        help="output folder (default bench/results/<dataset>-<protocol>-<method>)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="method config override; VALUE is parsed as JSON when it can be (repeatable)")
    parser.add_argument("--save-checkpoints", default=None, metavar="DIR",
                        help="write one checkpoint per (seed, split) into DIR, each with a model card (training and "
                        "validation ids, recipe, seed, the measured test numbers, the command reproducing it)")
    parser.add_argument("--checkpoint", default=None, metavar="CKPT",
                        help="evaluate this checkpoint on every split's test videos without training; the dataset's "
                        "feature sources must match the checkpoint's binding")
    from avhighlights.cli.weights import add_weights_dir_argument

    add_weights_dir_argument(parser)  # extractors built for video datasets (tvsum_videos, folder) look there too
    if not any(a.dest == "progress" for a in parser._actions):
        from avhighlights.pipeline.progress import PROGRESS_MODES

        parser.add_argument("--progress", choices=PROGRESS_MODES, default="bar", help="progress display on stderr")


def build_merge_subcommand(sub: argparse._SubParsersAction) -> None:
    """`avhighlights bench-merge PART... --out DIR` (the merge itself imports the harness only when it runs)."""
    p = sub.add_parser("bench-merge", help="join bench results run with disjoint seeds into one table",
                       description="Join bench results of one experiment (same dataset, protocol, method and "
                                   "config) run with disjoint --seed-values, e.g. on several machines, into one "
                                   "result.json and results.md with mean and std over all seeds.")
    p.add_argument("parts", nargs="+", help="result.json files or the folders holding them")
    p.add_argument("--out", required=True, help="output folder for the merged result.json and results.md")
    p.set_defaults(handler=_cmd_merge)


def _cmd_merge(args: argparse.Namespace) -> int:
    from avhighlights.evaluation.bench_merge import merge_main

    return merge_main(args)


def bench_main(args: argparse.Namespace) -> int:
    """Run `avhighlights bench` from parsed arguments; prints the markdown table."""
    from avhighlights.core.overrides import parse_overrides, parse_pairs
    from avhighlights.evaluation.bench import run_bench
    from avhighlights.pipeline.progress import Progress

    progress = Progress(getattr(args, "progress", "bar"))
    seeds = args.seed_values or args.seeds or _default_seeds(args.checkpoint)
    result = run_bench(args.data_root, args.dataset, args.method, seeds, args.domains, args.out,
                       args.protocol, parse_overrides(args.overrides), progress, args.save_checkpoints,
                       args.checkpoint, parse_pairs(getattr(args, "sources", []), "--source"))
    if hasattr(progress, "close"):
        progress.close()
    print(result.markdown_path.read_text())
    print(f"wrote {result.json_path} and {result.markdown_path}")
    return 0


def _default_seeds(checkpoint: str | None) -> int | list[int]:
    """5 seeds; for a checkpoint the one it was trained with (its split), else 42."""
    if checkpoint is None:
        return 5
    from avhighlights.evaluation.bench import BASE_SEEDS
    from avhighlights.models.checkpoint import read_checkpoint_info

    return [int(read_checkpoint_info(checkpoint).model_card.get("seed", BASE_SEEDS[0]))]
