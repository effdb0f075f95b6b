"""The `avhighlights` command line. Every subcommand is a thin layer over the Python API.

Exit codes: 0 success, 1 unexpected failure, 2 bad usage or configuration, 3 bad media input,
4 weights unavailable, 5 checkpoint problem, 6 feature-store problem, 7 dataset problem,
8 output location problem (not a folder, not writable, no space left, locked by another run),
9 some videos of a batch failed, the others were written, 130 interrupted.
Under `--progress json` an error is a JSON line `{"event": "error", "video", "error", "exit_code"}`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from avhighlights import __version__
from avhighlights.cli.bench import build_merge_subcommand
from avhighlights.cli.fit import add_score_fit_arguments, build_fit
from avhighlights.cli.options import add_progress, add_render, device_name, render_options
from avhighlights.cli.pca import build_pca_subcommand
from avhighlights.cli.reprocess import build_reprocess
from avhighlights.cli.run_config import run_config_from_args
from avhighlights.cli.selection import add_selection_arguments
from avhighlights.cli.train import build_train
from avhighlights.cli.watch import build_watch
from avhighlights.cli.weights import add_weights_dir_argument, build_weights
from avhighlights.core.errors import AVHighlightsError
from avhighlights.flows.serve import build_serve
from avhighlights.pipeline.progress import PROGRESS_MODES, Progress


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
                                   "OUT/<video name>/. A FOLDER is searched recursively for videos; --manifest "
                                   "reads paths from a file. With several videos a failed one is reported "
                                   "(failed: PATH: reason), the others are written, OUT/batch.json lists every "
                                   "video's status and the exit code is 9 when some failed.")
    p.add_argument("videos", nargs="*", metavar="VIDEO|FOLDER")
    p.add_argument("--manifest", action="append", default=[], metavar="FILE",
                   help="a text file of video paths, one per line (# comments; relative paths are relative to the "
                        "file's folder), or a .json list of paths; repeatable")
    p.add_argument("--method", default="loudness",
                   help="registered method name (see `avhighlights methods`); default: loudness")
    p.add_argument("--checkpoint", default=None,
                   help="a trained checkpoint (.safetensors), or zoo:NAME (see `avhighlights methods`); it names its "
                        "own method and extractors (default: the method's default zoo model, if any)")
    p.add_argument("--out", required=True, help="output folder (one sub-folder per video)")
    p.add_argument("--store", default=None,
                   help="feature store: a folder or fsspec URL such as s3://bucket/prefix "
                        "(default $AVH_FEATURE_STORE or ~/.cache/avhighlights/features)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the feature store")
    p.add_argument("--device", default=None, type=device_name,
                   help="torch device for extractors and models (default: cuda if present)")
    add_score_fit_arguments(p)
    add_weights_dir_argument(p)
    add_selection_arguments(p)
    add_render(p)
    add_progress(p)
    p.set_defaults(handler=_cmd_score)


def _build_render(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("render", help="re-render clips and files from an (edited) highlights.json",
                       description="Write clips, reel and result files from a highlights.json, for example after "
                                   "editing its clip list by hand.")
    p.add_argument("results", metavar="HIGHLIGHTS_JSON")
    p.add_argument("--out", default=None, help="output folder (default: the folder of the json file)")
    add_render(p)
    add_progress(p)
    p.set_defaults(handler=_cmd_render)


def _build_listing(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("methods", help="list registered methods")
    p.set_defaults(handler=_cmd_methods)
    p = sub.add_parser("extractors", help="list registered feature extractors")
    p.set_defaults(handler=_cmd_extractors)


def _build_bench(sub: argparse._SubParsersAction) -> None:
    from avhighlights.cli.bench import add_bench_arguments

    p = sub.add_parser("bench", help="train and evaluate a method on a benchmark dataset over several seeds",
                       description="Train (where the method needs it) and evaluate a method with the dataset's "
                                   "protocol over N seeds; writes result.json and results.md under --out.")
    add_bench_arguments(p)
    p.set_defaults(handler=_cmd_bench)


def _cmd_bench(args: argparse.Namespace) -> int:
    from avhighlights.cli.bench import bench_main

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
    add_progress(p)
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


def _cmd_score(args: argparse.Namespace) -> int:
    from avhighlights.pipeline.batch import collect_videos, score_batch

    progress = Progress(args.progress, video=_single_video(args))
    config, videos = run_config_from_args(args), collect_videos(args.videos, args.manifest)
    report = score_batch(videos, config, args.out, progress=progress, notify=progress.message,
                         on_row=lambda i, n, row, eta_s: _report_row(i, n, row, eta_s, progress))
    progress.close()
    for result in report.results:
        _report_result(result, progress)
    for row in report.rows:
        _report_warnings(row.video, row.warnings, progress)
    for row in report.failed:
        _say(progress, "failed", f"failed: {row.video}: {row.error}", video=row.video, error=row.error)
    return report.exit_code


def _report_row(index: int, total: int, row, eta_s: float | None, progress: Progress) -> None:
    from dataclasses import asdict

    from avhighlights.pipeline.batch import progress_line

    progress.event("video", index=index, total=total, eta_s=None if eta_s is None else round(eta_s, 1), **asdict(row))
    if progress.mode == "bar":
        progress.message(progress_line(index, total, row, eta_s))


def _say(progress: Progress, event: str, line: str, **fields) -> None:
    """One line on stderr for people, or an event in json mode (warnings and failures, whatever --progress)."""
    if progress.mode == "json":
        progress.event(event, **fields)
    else:
        print(line, file=sys.stderr)


def _report_result(result, progress: Progress) -> None:
    progress.event("result", video=str(result.video), out_dir=str(result.out_dir), clips=result.n_clips,
                   clip_files=[str(p) for p in result.clip_paths], selected_s=round(result.selected_s, 3))
    if progress.mode != "json":
        summary = f"{result.n_clips} clips ({result.selected_s:.1f} s selected)"
        print(f"{result.video}: {summary} -> {result.out_dir}")


def _report_warnings(video, warnings: list[str], progress: Progress) -> None:
    for text in warnings:
        _say(progress, "warning", f"warning: {video}: {text}", video=str(video), text=text)


def _cmd_render(args: argparse.Namespace) -> int:
    from avhighlights.pipeline.run import render_results

    progress = Progress(args.progress)
    result = render_results(args.results, args.out, render=render_options(args), progress=progress)
    progress.close()
    _report_result(result, progress)
    _report_warnings(result.video, result.warnings, progress)
    return 0


def _cmd_methods(args: argparse.Namespace) -> int:
    from avhighlights.models import METHODS
    from avhighlights.zoo import zoo_entries

    zoo = zoo_entries()
    for name, cls in METHODS.load_all().items():
        kind = "trainable" if cls.trainable else "reference"
        kind += ", supervised" if cls.trainable and cls.supervised else (", unsupervised" if cls.trainable else "")
        print(f"{name:12s} {kind:26s} roles: {', '.join(cls.roles) or '-'}")
        for entry in (e for e in zoo if e.method == name):
            numbers = ", ".join(f"{k} {v:.4g}" for k, v in entry.numbers.items())
            default = " (default)" if entry.default else ""
            print(f"  zoo:{entry.name}{default}: {entry.summary}" + (f" [{numbers}]" if numbers else ""))
    return 0


def _cmd_extractors(args: argparse.Namespace) -> int:
    from avhighlights.extractors import EXTRACTORS

    for name, cls in EXTRACTORS.load_all().items():
        print(f"{name:18s} v{cls.version:4s} {cls.modality}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from avhighlights.pipeline.demo import run_demo

    return run_demo(args.out, Progress(args.progress))


_SUBCOMMAND_BUILDERS = [
    _build_info, _build_score, _build_render, _build_bench, _build_store, _build_listing, _build_demo, build_fit,
    build_watch, build_pca_subcommand, build_serve, build_merge_subcommand, build_weights, build_reprocess,
    build_train,
]


def register_subcommand(builder) -> None:
    """Let other modules (bench, fit, store, pca) add subcommands without editing this file."""
    _SUBCOMMAND_BUILDERS.append(builder)


def _single_video(args: argparse.Namespace) -> str | None:
    """The input video when the command has exactly one (it is then named in every progress event)."""
    from pathlib import Path

    videos = getattr(args, "videos", None)
    single = isinstance(videos, list) and len(videos) == 1 and not Path(videos[0]).is_dir()
    return str(videos[0]) if single else None


def _report_error(args: argparse.Namespace, exc: AVHighlightsError) -> None:
    """One plain line on stderr, or a JSON `error` event under `--progress json`."""
    mode = getattr(args, "progress", "bar")
    Progress(mode if mode in PROGRESS_MODES else "bar", sys.stderr, video=_single_video(args)).error(exc, exc.exit_code)


# OpenMP threads (torch's) that spin while they wait steal the core the decoder or another process needs: on the
# 2-core VM under load, MobileNet-v1 0.25 ran 9.6-13.1 ms/frame with 2 spinning threads, 4.3-5.5 with PASSIVE and
# 3.9-6.0 with 1 thread. Set before torch is imported (it is imported lazily); a value the user set is kept.
OPENMP_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}


def main(argv: Sequence[str] | None = None) -> int:
    from avhighlights.extractors.weights import weights_search_path

    for name, value in OPENMP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with weights_search_path(getattr(args, "weights_dir", None) or ()):
            return int(args.handler(args) or 0)
    except AVHighlightsError as exc:
        _report_error(args, exc)
        return exc.exit_code
    except KeyboardInterrupt:
        print("avhighlights: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
