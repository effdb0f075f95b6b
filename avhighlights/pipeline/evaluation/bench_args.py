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
    parser.add_argument("--method", required=True, help="registered method name (see `avhighlights methods`)")
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds: the first N of 42 123 456 777 999 "
                        "(then 1000+i); default 5")
    parser.add_argument("--domains", nargs="+", default=None, help="only these categories / domains")
    parser.add_argument("--protocol", default=None,
                        help="protocol: umt_top5, davihd_5fold, per_domain, mrhisum_official, "
                        "folder_1fps, tvsum_random80, xdata_tvsum_top5, xdata_youtube (an unknown name lists "
                        "them); default: the dataset's (tvsum: umt_top5, youtube_highlights: per_domain)")
    parser.add_argument("--out", default=None,
                        help="output folder (default bench/results/<dataset>-<protocol>-<method>)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="method config override; VALUE is parsed as JSON when it can be (repeatable)")
    if not any(a.dest == "progress" for a in parser._actions):
        from avhighlights.pipeline.progress import PROGRESS_MODES

        parser.add_argument("--progress", choices=PROGRESS_MODES, default="bar", help="progress display on stderr")
