"""`avhighlights watch`: the options of the watch service.

This module imports only argparse at load, so the CLI starts without Prefect; the handler imports the
flow. PREFECT_API_URL selects the server, as for every Prefect client.
"""

from __future__ import annotations

import argparse
import json

from avhighlights.cli.selection import add_selection_arguments

DESCRIPTION = ("Watch a folder: every new video (once its copy is complete) becomes one extract-and-score "
               "deployment run; each content is processed once (renamed or re-copied files included); "
               "undecodable files are quarantined. Needs a Prefect server (PREFECT_API_URL) and the deployment "
               "served or deployed to a worker.")


def add_watch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--folder", required=True, help="the watched folder (videos directly inside it)")
    parser.add_argument("--out", required=True, help="output folder passed to every extract-and-score run")
    parser.add_argument("--quarantine", required=True, help="undecodable files are moved here with a .reason.txt")
    parser.add_argument("--state", required=True, help="state folder holding the ledger (ledger.json)")
    parser.add_argument("--method", default="loudness", help="registered method name (default: loudness)")
    parser.add_argument("--checkpoint", default=None, help="a trained checkpoint (.safetensors) for the runs")
    parser.add_argument("--store", default="default", help="feature store folder or fsspec URL for the runs")
    parser.add_argument("--bind", action="append", default=[], metavar="ROLE=EXTRACTOR",
                        help="feed a role from another extractor in every run, e.g. visual=mobilenet_v1_025")
    parser.add_argument("--library", action="append", default=[], metavar="DIR",
                        help="an unsupervised method without --checkpoint is fitted on each new video plus these "
                             "folders (repeatable; default $AVH_LIBRARY of the worker)")
    parser.add_argument("--interval-s", type=float, default=1.0, help="seconds between polls (default 1)")
    parser.add_argument("--settle-s", type=float, default=2.0,
                        help="a file must keep its size and mtime this long before it is used (default 2)")
    parser.add_argument("--reconcile-s", type=float, default=30.0,
                        help="period of the full rescan that catches missed events (default 30)")
    parser.add_argument("--max-attempts", type=int, default=2,
                        help="runs per content when runs fail or the server is unreachable (default 2)")
    parser.add_argument("--deployment", default="extract-and-score/extract-and-score",
                        help="the deployment each video is sent to (FLOW/DEPLOYMENT)")
    add_selection_arguments(parser)
    bounded = parser.add_mutually_exclusive_group()
    bounded.add_argument("--once", action="store_true",
                         help="scan once, submit everything that settles, then exit (for cron and tests)")
    bounded.add_argument("--max-iterations", type=int, default=None, help="stop after this many polls")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avhighlights watch", description=DESCRIPTION)
    add_watch_arguments(parser)
    return parser



def build_watch(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("watch", help="watch a folder and send new videos to the extract-and-score deployment",
                       description=DESCRIPTION)
    add_watch_arguments(p)
    p.set_defaults(handler=watch_main)


def watch_main(args: argparse.Namespace) -> int:
    """The service, or with --once / --max-iterations one `watch-folder` flow run; prints the counters as JSON."""
    import logging

    from avhighlights.flows.prefect_env import apply_prefect_defaults

    apply_prefect_defaults()
    from avhighlights.cli.run_config import run_config_from_args
    from avhighlights.flows.watch_folder import make_watcher, serve_watch, watch_folder

    config = run_config_from_args(args)
    options = dict(folder=args.folder, out_dir=args.out, quarantine=args.quarantine, state_dir=args.state,
                   settle_s=args.settle_s, reconcile_s=args.reconcile_s, interval_s=args.interval_s,
                   max_attempts=args.max_attempts, deployment=args.deployment)
    if args.once or args.max_iterations is not None:
        stats = watch_folder(**options, config=config.to_dict(), once=args.once, max_iterations=args.max_iterations)
    else:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        stats = serve_watch(make_watcher(**options, config=config))
    print(json.dumps(stats, sort_keys=True))
    return 0
