"""`avhighlights fit` and the fitting options of `avhighlights score` (--bind, --set, --library,
--seed, --refit, --refit-growth). Kept out of cli.py; this module imports only argparse at load."""

from __future__ import annotations

import argparse
import sys

from avhighlights.core.overrides import parse_overrides, parse_pairs  # noqa: F401  (re-exported)


def _add_binding_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind", action="append", default=[], metavar="ROLE=EXTRACTOR",
                        help="feed ROLE from another extractor (repeatable), e.g. --bind visual=mobilenet_v1_025 "
                             "--bind audio=efficientat_mn04 for CPU without the default weights; see "
                             "`avhighlights methods` for roles and `avhighlights extractors` for extractors")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="method config override; VALUE is parsed as JSON when it can be (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the fit (default 0)")


def build_fit(sub: argparse._SubParsersAction) -> None:
    """The `fit` subcommand."""
    from avhighlights.cli.options import add_progress, device_name
    from avhighlights.cli.weights import add_weights_dir_argument

    p = sub.add_parser("fit", help="fit an unsupervised method (recurrence, rasl) on your own videos",
                       description="Fit an unsupervised method on every video given with --videos (files, or folders "
                                   "scanned recursively) and write a self-describing checkpoint for "
                                   "`avhighlights score --checkpoint`. No labels are needed or read.")
    p.add_argument("--method", required=True, help="an unsupervised trainable method (recurrence, rasl)")
    p.add_argument("--videos", action="append", required=True, metavar="PATH",
                   help="a video file or a folder of videos (repeatable)")
    p.add_argument("--out", required=True, help="checkpoint file to write (.safetensors)")
    _add_binding_options(p)
    p.add_argument("--store", default=None, help="feature store folder or fsspec URL (default $AVH_FEATURE_STORE or "
                                                 "~/.cache/avhighlights/features)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the feature store")
    p.add_argument("--device", default=None, type=device_name,
                   help="torch device of extractors and method (default: cuda if present)")
    add_weights_dir_argument(p)
    add_progress(p)
    p.set_defaults(handler=cmd_fit)


def cmd_fit(args: argparse.Namespace) -> int:
    from avhighlights.pipeline.fit import fit_on_videos
    from avhighlights.pipeline.progress import Progress

    progress = Progress(args.progress)
    report = fit_on_videos(args.videos, args.method, args.out, binding_overrides=parse_pairs(args.bind, "--bind"),
                           method_overrides=parse_overrides(args.overrides),
                           store=None if args.no_cache else (args.store or "default"), seed=args.seed,
                           progress=progress, device=args.device)
    progress.close()
    binding = ", ".join(f"{role}={src.name} v{src.version}" for role, src in report.binding.items())
    progress.event("fit", checkpoint=str(report.checkpoint), method=report.method, videos=len(report.videos),
                   steps=report.n_steps, seconds=round(report.seconds, 3),
                   near_constant_fraction=report.near_constant_fraction)
    if report.near_constant_fraction > 0 and progress.mode != "json":
        print(f"warning: {report.checkpoint}: near-constant scores on {report.near_constant_fraction:.0%} of the "
              "training videos (range at most 1e-3 of their scale): the fit collapsed and ranks nothing; refit "
              "with a lower learning rate (--set lr=...)", file=sys.stderr)
    if progress.mode != "json":
        print(f"fitted {report.method} on {len(report.videos)} videos ({report.n_steps} s; {binding}) in "
              f"{report.seconds:.1f} s -> {report.checkpoint}")
    return 0


def add_score_fit_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `score` for bindings, overrides and fitting unsupervised methods on the fly."""
    _add_binding_options(parser)
    group = parser.add_argument_group("fitting an unsupervised method without --checkpoint (recurrence, rasl)")
    group.add_argument("--library", action="append", default=[], metavar="DIR",
                       help="folder of your videos fitted together with the scored ones (repeatable; default: the "
                            "folders in $AVH_LIBRARY, separated by ':')")
    group.add_argument("--refit", action="store_true", help="fit anew even when a cached fit could be reused")
    group.add_argument("--refit-growth", type=float, default=0.2,
                       help="refit when the videos grew by more than this fraction beyond the nearest cached fit "
                            "(default 0.2 = 20%%); below it the nearest fit scores and fit.json says so")
