"""Command-line options of the clip selection (pipeline/select.py), shared by `score`, `watch` and `reprocess`.

Imports only argparse at load, so every command line can use it without pulling in numpy or Prefect.
"""

from __future__ import annotations

import argparse

SELECTION_HELP = ("How much is selected: --top-ratio (the papers' default, 0.5 = the best half of the seconds), "
                  "or --target-s (best clips up to a total length, margins included), or --threshold / "
                  "--threshold-quantile (every second scoring at least that; with --target-s the best of them up "
                  "to the target). --target-s and the thresholds replace --top-ratio; --max-total-s caps any of "
                  "them. Clips are then shaped by --min-clip-s, --merge-gap-s and --pad-s.")


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    """The "selection of highlight clips" option group (defaults are those of SelectionConfig)."""
    group = parser.add_argument_group("selection of highlight clips", SELECTION_HELP)
    group.add_argument("--top-ratio", type=float, default=0.5,
                       help="fraction of seconds selected, by score (default 0.5 = top 50%%, as in the papers); "
                            "ignored when --target-s or a threshold is given")
    group.add_argument("--target-s", type=float, default=None, metavar="SECONDS",
                       help="best clips up to this total length, e.g. 60 for a 60-s highlight; the total (margins "
                            "included) never exceeds it and comes as close as whole clips allow")
    thresholds = group.add_mutually_exclusive_group()
    thresholds.add_argument("--threshold", type=float, default=None, metavar="SCORE",
                            help="select every second whose score is at least SCORE (the method's score units)")
    thresholds.add_argument("--threshold-quantile", type=float, default=None, metavar="Q",
                            help="select every second scoring at least the Q-quantile of this video's scores, "
                                 "e.g. 0.9 = the top 10%% of seconds (Q in [0, 1])")
    group.add_argument("--min-clip-s", type=float, default=2.0,
                       help="shortest clip in seconds; shorter runs are extended into their neighbours (default 2)")
    group.add_argument("--pad-s", type=float, default=0.0,
                       help="margin in seconds added before and after every clip (default 0); counted in --target-s")
    group.add_argument("--merge-gap-s", type=float, default=0.0,
                       help="merge clips separated by at most this many seconds (default 0)")
    group.add_argument("--max-total-s", type=float, default=None,
                       help="cap on the total selected duration, whatever the rule; lowest-scoring clips are "
                            "dropped (or the last one trimmed) first")


def selection_from_args(args: argparse.Namespace):
    """The SelectionConfig of parsed selection options (a bad value is a ConfigError, exit 2)."""
    from avhighlights.pipeline.select import SelectionConfig

    return SelectionConfig(top_ratio=args.top_ratio, min_clip_s=args.min_clip_s, pad_s=args.pad_s,
                           max_total_s=args.max_total_s, merge_gap_s=args.merge_gap_s, target_s=args.target_s,
                           threshold=args.threshold, threshold_quantile=args.threshold_quantile)
