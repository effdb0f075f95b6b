"""The RunConfig of parsed options, built once per command (`score`, `watch`, `reprocess`): the scorer (method,
checkpoint, --bind, --set, --device, fitting on the fly), the selection, the writing options and the store.
Options a command does not have take their defaults. Imports only argparse at load."""

from __future__ import annotations

import argparse


def run_config_from_args(args: argparse.Namespace):
    """The RunConfig of `args` (a bad value is a ConfigError, exit 2)."""
    from avhighlights.cli.options import render_options
    from avhighlights.cli.selection import selection_from_args
    from avhighlights.core.overrides import parse_overrides, parse_pairs
    from avhighlights.pipeline.run_config import AutoFit, RenderOptions, RunConfig, ScorerSpec

    auto = AutoFit(library=tuple(args.library), seed=getattr(args, "seed", 0), refit=getattr(args, "refit", False),
                   refit_growth=getattr(args, "refit_growth", 0.2))
    scorer = ScorerSpec(method=args.method, checkpoint=args.checkpoint, device=getattr(args, "device", None),
                        binding_overrides=parse_pairs(args.bind, "--bind") or None,
                        method_overrides=parse_overrides(getattr(args, "overrides", [])) or None, auto_fit=auto)
    render = render_options(args) if hasattr(args, "stream_copy") else RenderOptions()
    store = None if getattr(args, "no_cache", False) else (args.store or "default")
    return RunConfig(scorer, selection_from_args(args), render, store)
