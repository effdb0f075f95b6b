"""The `avhighlights` command line. Every subcommand is a thin layer over the Python API.

Exit codes: 0 success, 1 unexpected failure, 2 bad usage or configuration, 3 bad media input,
4 weights unavailable, 5 checkpoint problem, 6 feature-store problem, 7 dataset problem,
8 output location problem (not a folder, not writable, no space left, locked by another run),
9 some videos of a batch failed, the others were written, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from avhighlights import __version__
from avhighlights.errors import AVHighlightsError
from avhighlights.fit_cli import add_score_fit_arguments, build_fit, score_spec_options
from avhighlights.flows.serve import build_serve
from avhighlights.flows.watch_cli import build_watch
from avhighlights.pca_cli import build_pca_subcommand
from avhighlights.pipeline.evaluation.bench_args import build_merge_subcommand
from avhighlights.pipeline.progress import PROGRESS_MODES, Progress


def _add_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--progress", choices=PROGRESS_MODES, default="bar",
                        help="progress display on stderr: 'bar' (tqdm bars), 'json' (one JSON object per line "
                             "for machines), or 'none' (default: bar)")


def _add_selection(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("selection of highlight clips")
    group.add_argument("--top-ratio", type=float, default=0.5,
                       help="fraction of seconds selected, by score (default 0.5 = top 50%%)")
    group.add_argument("--min-clip-s", type=float, default=2.0,
                       help="shortest clip in seconds; shorter runs are extended into their neighbours (default 2)")
    group.add_argument("--pad-s", type=float, default=0.0, help="seconds added before and after every clip")
    group.add_argument("--merge-gap-s", type=float, default=0.0,
                       help="merge clips separated by at most this many seconds (default 0)")
    group.add_argument("--max-total-s", type=float, default=None,
                       help="cap on the total selected duration; lowest-scoring clips are dropped first")


def _add_render(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("writing clips")
    group.add_argument("--stream-copy", action="store_true",
                       help="cut clips without re-encoding (fast, but cuts snap to keyframes)")
    group.add_argument("--no-reel", action="store_true", help="do not write the concatenated reel.mp4")
    group.add_argument("--no-clips", action="store_true", help="write only the result files (json/csv/edl/vtt/png)")


def _build_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="probe and validate videos", description="Probe and validate each VIDEO "
                       "(ffprobe + a decode check) and print its properties; exits 3 on the first bad file.")
    p.add_argument("videos", nargs="+", metavar="VIDEO")
    p.add_argument("--json", action="store_true", help="print one JSON object per video")
    p.set_defaults(handler=_cmd_info)


def _build_score(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="score videos and write highlight clips and results",
                       description="Score every second of each VIDEO with a method, select the highlight clips and "
                                   "write them with highlights.json/.csv/.edl, chapters and a score plot under "
                                   "OUT/<video name>/.")
    p.add_argument("videos", nargs="+", metavar="VIDEO")
    p.add_argument("--method", default="loudness",
                   help="registered method name (see `avhighlights methods`); default: loudness")
    p.add_argument("--checkpoint", default=None,
                   help="a trained checkpoint (.safetensors); it names its own method and extractors")
    p.add_argument("--out", required=True, help="output folder (one sub-folder per video)")
    p.add_argument("--store", default=None,
                   help="feature store: a folder or fsspec URL such as s3://bucket/prefix "
                        "(default $AVH_FEATURE_STORE or ~/.cache/avhighlights/features)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the feature store")
    p.add_argument("--device", default=None, help="torch device for extractors and models (default: cuda if present)")
    add_score_fit_arguments(p)
    _add_selection(p)
    _add_render(p)
    _add_progress(p)
    p.set_defaults(handler=_cmd_score)


def _build_render(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("render", help="re-render clips and files from an (edited) highlights.json",
                       description="Write clips, reel and result files from a highlights.json, for example after "
                                   "editing its clip list by hand.")
    p.add_argument("results", metavar="HIGHLIGHTS_JSON")
    p.add_argument("--out", default=None, help="output folder (default: the folder of the json file)")
    _add_render(p)
    _add_progress(p)
    p.set_defaults(handler=_cmd_render)


def _build_listing(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("methods", help="list registered methods")
    p.set_defaults(handler=_cmd_methods)
    p = sub.add_parser("extractors", help="list registered feature extractors")
    p.set_defaults(handler=_cmd_extractors)


def _build_bench(sub: argparse._SubParsersAction) -> None:
    from avhighlights.pipeline.evaluation.bench_args import add_bench_arguments

    p = sub.add_parser("bench", help="train and evaluate a method on a benchmark dataset over several seeds",
                       description="Train (where the method needs it) and evaluate a method with the dataset's "
                                   "protocol over N seeds; writes result.json and results.md under --out.")
    add_bench_arguments(p)
    p.set_defaults(handler=_cmd_bench)


def _cmd_bench(args: argparse.Namespace) -> int:
    from avhighlights.pipeline.evaluation.bench import bench_main

    return bench_main(args)


def _build_store(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("store", help="inspect and maintain the feature store",
                       description="List, verify or prune the content-addressed feature store.")
    p.add_argument("action", choices=("list", "verify", "prune"))
    p.add_argument("--store", default=None, help="store folder or fsspec URL (default: $AVH_FEATURE_STORE or "
                                                 "~/.cache/avhighlights/features)")
    p.add_argument("--remove-corrupt", action="store_true", help="verify: delete corrupt entries")
    p.add_argument("--older-than-days", type=float, default=None, help="prune: only entries older than this")
    p.add_argument("--extractor", default=None, help="prune: only entries of this extractor")
    p.add_argument("--dry-run", action="store_true", help="prune: list what would be removed")
    p.set_defaults(handler=_cmd_store)


def _cmd_store(args: argparse.Namespace) -> int:
    from avhighlights.extractors.store import FeatureStore

    store = FeatureStore(args.store, create=False)
    if args.action == "list":
        for entry in store.entries():
            ident = entry.manifest.get("identity", {})
            print(f"{entry.key[:16]}  {ident.get('extractor', '?'):18s} v{ident.get('version', '?'):3s} "
                  f"video {entry.manifest.get('video_sha256', '?')[:12]}  shape {entry.manifest.get('shape')}  "
                  f"{entry.size_bytes / 1e6:.2f} MB")
        return 0
    if args.action == "verify":
        report = store.verify(remove_corrupt=args.remove_corrupt)
        for line in report.corrupt:
            print(f"corrupt: {line}")
        print(f"checked {report.checked} entries, {len(report.corrupt)} corrupt, {len(report.removed)} removed")
        return 6 if report.corrupt and not args.remove_corrupt else 0
    older = None if args.older_than_days is None else args.older_than_days * 86400
    keys = store.prune(older_than_s=older, extractor=args.extractor, dry_run=args.dry_run)
    print(f"{'would remove' if args.dry_run else 'removed'} {len(keys)} entries")
    return 0


def _build_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline on a generated sample video (no network, no files)",
                       description="Generate a 40-s sample video with scene changes and loud audio events at known "
                                   "times, score it with the loudness method and write clips, reel and results.")
    p.add_argument("--out", default="demo_out", help="output folder (default: ./demo_out)")
    _add_progress(p)
    p.set_defaults(handler=_cmd_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avhighlights",
        description="Audio-visual video highlight detection: raw video in, scored seconds, highlight clips, a reel "
                    "and machine-readable results out.",
        epilog="Exit codes: 0 ok, 1 unexpected failure, 2 usage/configuration, 3 bad media, 4 weights missing, "
               "5 checkpoint, 6 feature store, 7 dataset, 8 output location, 9 some videos of a batch failed.",
    )
    parser.add_argument("--version", action="version", version=f"avhighlights {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for build in _SUBCOMMAND_BUILDERS:
        build(sub)
    return parser


def _cmd_info(args: argparse.Namespace) -> int:
    from avhighlights.pipeline.probe import probe

    for video in args.videos:
        info = probe(video)
        if args.json:
            print(json.dumps(info.to_json()))
        else:
            print(_format_info(info.to_json()))
    return 0


def _format_info(data: dict) -> str:
    audio = (f"{data['audio_codec']} {data['audio_sample_rate']} Hz x{data['audio_channels']}"
             if data["has_audio"] else "none")
    vfr = " (variable frame rate)" if data["variable_frame_rate"] else ""
    return (f"{data['path']}\n  duration {data['duration_s']:.3f} s, {data['width']}x{data['height']}, "
            f"{data['fps_float']:.3f} fps{vfr}, rotation {data['rotation_deg']}\n  video {data['video_codec']}, "
            f"audio {audio}, sha256 {data['sha256'][:16]}…")


def _selection_from(args: argparse.Namespace):
    from avhighlights.pipeline.select import SelectionConfig

    return SelectionConfig(top_ratio=args.top_ratio, min_clip_s=args.min_clip_s, pad_s=args.pad_s,
                           max_total_s=args.max_total_s, merge_gap_s=args.merge_gap_s)


def _render_options(args: argparse.Namespace):
    from avhighlights.pipeline.run import RenderOptions

    return RenderOptions(stream_copy=args.stream_copy, write_reel=not args.no_reel, write_clips=not args.no_clips)


def _cmd_score(args: argparse.Namespace) -> int:
    from avhighlights.pipeline.run import score_videos
    from avhighlights.pipeline.score import ScorerSpec

    progress = Progress(args.progress)
    spec = ScorerSpec(method=args.method, checkpoint=args.checkpoint, device=args.device, **score_spec_options(args))
    results = score_videos(args.videos, spec, args.out, selection=_selection_from(args),
                           render=_render_options(args), store=None if args.no_cache else (args.store or "default"),
                           progress=progress)
    progress.close()
    for result in results:
        _report_result(result, progress)
    return 0


def _report_result(result, progress: Progress) -> None:
    progress.event("result", video=str(result.video), out_dir=str(result.out_dir), clips=result.n_clips,
                   clip_files=[str(p) for p in result.clip_paths], selected_s=round(result.selected_s, 3))
    if progress.mode != "json":
        summary = f"{result.n_clips} clips ({result.selected_s:.1f} s selected)"
        print(f"{result.video}: {summary} -> {result.out_dir}")


def _cmd_render(args: argparse.Namespace) -> int:
    from avhighlights.pipeline.run import render_results

    progress = Progress(args.progress)
    result = render_results(args.results, args.out, render=_render_options(args), progress=progress)
    progress.close()
    _report_result(result, progress)
    return 0


def _cmd_methods(args: argparse.Namespace) -> int:
    from avhighlights.models import METHODS

    for name in METHODS.names():
        cls = METHODS.get(name)
        kind = "trainable" if cls.trainable else "reference"
        kind += ", supervised" if cls.trainable and cls.supervised else (", unsupervised" if cls.trainable else "")
        print(f"{name:12s} {kind:26s} roles: {', '.join(cls.roles) or '-'}")
    return 0


def _cmd_extractors(args: argparse.Namespace) -> int:
    from avhighlights.extractors import EXTRACTORS

    for name in EXTRACTORS.names():
        cls = EXTRACTORS.get(name)
        print(f"{name:18s} v{cls.version:4s} {cls.modality}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from avhighlights.pipeline.demo import run_demo

    return run_demo(args.out, Progress(args.progress))


_SUBCOMMAND_BUILDERS = [
    _build_info, _build_score, _build_render, _build_bench, _build_store, _build_listing, _build_demo, build_fit,
    build_watch, build_pca_subcommand, build_serve, build_merge_subcommand,
]


def register_subcommand(builder) -> None:
    """Let other modules (bench, fit, store, pca) add subcommands without editing this file."""
    _SUBCOMMAND_BUILDERS.append(builder)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except AVHighlightsError as exc:
        print(f"avhighlights: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("avhighlights: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
