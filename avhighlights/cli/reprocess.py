"""`avhighlights reprocess`: the options of the reprocess flow.

Only argparse is imported at load (Prefect is imported by the handler), so registering the sub-command
keeps `avhighlights --help` and the other commands free of Prefect. The selection, writing and progress
options are those of `avhighlights score`; the flow gets the RunConfig that `score` builds (cli/run_config.py).

Exit codes: 0 every video written or skipped, 9 some videos failed (the others were written; the summary
lists each failure with its file and reason), and when every video failed the code their errors share
(3 = bad media), else 1.
"""

from __future__ import annotations

import argparse
import json
import sys

DESCRIPTION = ("Score every video of a folder (searched recursively) or a manifest (.txt, one path per line, or "
               "a .json list) with the Prefect flow reprocess-dataset: one task per video, resumable (finished "
               "videos are skipped, features come from the store), a bad video becomes a failed row instead of "
               "failing the batch. Writes OUT/<relative path>/<stem>/ per video and OUT/reprocess-summary.json.")
EPILOG = ("Exit codes: 0 ok, 9 some videos failed (the others were written), 3 every video was bad media "
          "(when all failed, the code their errors share, else 1), 2 usage/configuration, 6 feature store, "
          "7 dataset (missing folder or malformed manifest).")


def add_reprocess_arguments(parser: argparse.ArgumentParser) -> None:
    from avhighlights.cli.options import add_progress, add_render
    from avhighlights.cli.selection import add_selection_arguments

    parser.add_argument("source", help="a folder of videos or a manifest (.txt/.json)")
    parser.add_argument("--out", default="reprocess_out", help="output folder (default: ./reprocess_out)")
    parser.add_argument("--method", default="loudness", help="registered method name (default: loudness)")
    parser.add_argument("--checkpoint", default=None, help="a trained checkpoint (.safetensors)")
    parser.add_argument("--store", default="default",
                        help="feature store folder or fsspec URL (default $AVH_FEATURE_STORE or the user cache)")
    parser.add_argument("--no-evaluate", action="store_true", help="do not compute metrics from <stem>.labels.*")
    parser.add_argument("--bind", action="append", default=[], metavar="ROLE=EXTRACTOR",
                        help="feed a role from another extractor, e.g. visual=mobilenet_v1_025 (repeatable)")
    parser.add_argument("--library", action="append", default=[], metavar="DIR",
                        help="more videos an unsupervised method is fitted on (repeatable; default $AVH_LIBRARY)")
    runner = parser.add_argument_group("task runner (default: threads in this process)")
    runner.add_argument("--max-workers", type=int, default=None, help="threads of the default task runner")
    runner.add_argument("--dask-workers", type=int, default=0,
                        help="run on a local Dask cluster of N processes (listening on 127.0.0.1 only)")
    runner.add_argument("--dask-address", default=None, help="run on an existing Dask scheduler (tcp://host:8786)")
    runner.add_argument("--dask-dashboard", default=None, metavar="HOST:PORT",
                        help="where the local cluster's dashboard listens, e.g. 127.0.0.1:8787 "
                             "(default: 127.0.0.1 on a free port; the log prints its address)")
    add_selection_arguments(parser)
    add_render(parser)
    add_progress(parser)


def build_reprocess(sub: argparse._SubParsersAction) -> None:
    """The `avhighlights reprocess` sub-command."""
    p = sub.add_parser("reprocess", help="score a folder or manifest of videos with the reprocess-dataset flow",
                       description=DESCRIPTION, epilog=EPILOG)
    add_reprocess_arguments(p)
    p.set_defaults(handler=reprocess_main)


def reprocess_main(args: argparse.Namespace) -> int:
    """Run the flow, report each video and the summary, and return the batch's exit code."""
    from avhighlights.flows.prefect_env import apply_prefect_defaults

    apply_prefect_defaults()
    from avhighlights.cli.run_config import run_config_from_args
    from avhighlights.flows.reprocess import SUMMARY_NAME, batch_exit_code, reprocess_dataset
    from avhighlights.pipeline.progress import Progress

    progress = Progress(args.progress)
    config = run_config_from_args(args)
    summary = reprocess_dataset(args.source, args.out, config.to_dict(), evaluate=not args.no_evaluate,
                                dask_address=args.dask_address, dask_workers=args.dask_workers,
                                max_workers=args.max_workers, dask_dashboard=args.dask_dashboard,
                                on_video=_video_progress(progress))
    progress.close()
    _report(summary, progress, f"{args.out}/{SUMMARY_NAME}")
    return batch_exit_code(summary)


def _video_progress(progress):
    """A `videos` bar (or one `result` event per video with --progress json)."""
    def on_video(row: dict, finished: int, total: int) -> None:
        progress.event("result", **row)
        progress("videos", finished / total)

    return on_video


def _report(summary: dict, progress, summary_path: str) -> None:
    counts = {k: summary[k] for k in ("n_videos", "done", "skipped", "failed")}
    progress.event("summary", **counts, failures=summary["failures"], summary_json=summary_path)
    if progress.mode != "json":
        for failure in summary["failures"]:
            error, file = failure["error"], failure["file"]
            named = error if file in error else f"{file}: {error}"
            print(f"avhighlights: failed: {named}", file=sys.stderr)
        print(json.dumps({k: v for k, v in summary.items() if k != "videos"}, indent=1))
