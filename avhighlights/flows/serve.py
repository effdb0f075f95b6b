"""Serve the `extract-and-score` deployment from this process (no work pool needed):

    python -m avhighlights.flows.serve [--limit N] [--gpu-slots N]      # or: avhighlights serve
    prefect deployment run 'extract-and-score/extract-and-score' --param video=/path/in.mp4 --watch

Flow runs execute in subprocesses of the server process. For several machines use the work pool
declared in prefect.yaml instead (see the README, "Orchestration (Prefect)"). Prefect is imported
inside the functions, so the CLI can register `serve` without importing it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

DEPLOYMENT_NAME = "extract-and-score"


def serve(limit: int | None = None, gpu_slots: int | None = None) -> None:
    """Register the deployment and execute its runs until interrupted (blocks)."""
    from prefect.deployments.runner import EntrypointType

    from avhighlights.flows.extract_and_score import extract_and_score

    if gpu_slots is not None:
        from avhighlights.flows.concurrency import ensure_gpu_limit

        ensure_gpu_limit(gpu_slots)
    extract_and_score.serve(name=DEPLOYMENT_NAME, limit=limit, tags=["avhighlights"],
                            description="Score one video and write its highlight clips and results.",
                            entrypoint_type=EntrypointType.MODULE_PATH)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, default=None,
                        help="at most this many flow runs at once in this process (default: no limit)")
    parser.add_argument("--gpu-slots", type=int, default=None,
                        help="create/resize the global concurrency limit 'gpu' to this many slots first")


def build_serve(sub: argparse._SubParsersAction) -> None:
    """The `avhighlights serve` subcommand (Prefect is imported only when it runs)."""
    p = sub.add_parser("serve", help="serve the Prefect deployment extract-and-score/extract-and-score",
                       description="Serve the extract-and-score deployment against $PREFECT_API_URL; start runs "
                                   "with: prefect deployment run 'extract-and-score/extract-and-score' "
                                   "--param video=PATH")
    add_serve_arguments(p)
    p.set_defaults(handler=_cmd_serve)


def _cmd_serve(args: argparse.Namespace) -> int:
    from avhighlights.flows.prefect_env import apply_prefect_defaults

    apply_prefect_defaults()
    serve(limit=args.limit, gpu_slots=args.gpu_slots)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m avhighlights.flows.serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_serve_arguments(parser)
    return _cmd_serve(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
