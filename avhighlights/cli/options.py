"""Options shared by several sub-commands (progress display, writing clips and result files), kept free of
heavy imports so that building the parser stays fast."""

from __future__ import annotations

import argparse

from avhighlights.pipeline.progress import PROGRESS_MODES


def add_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--progress", choices=PROGRESS_MODES, default="bar",
                        help="progress display on stderr: 'bar' (tqdm bars), 'json' (one JSON object per line "
                             "for machines), or 'none' (default: bar)")


def add_render(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("writing clips")
    group.add_argument("--stream-copy", action="store_true",
                       help="cut clips without re-encoding (fast, but cuts snap to keyframes)")
    group.add_argument("--no-reel", action="store_true", help="do not write the concatenated reel.mp4")
    group.add_argument("--no-clips", action="store_true", help="write only the result files (json/csv/edl/vtt/png)")
    group.add_argument("--export", type=export_formats, default=None, metavar="FORMATS",
                       help="comma-separated result files to write: otio (highlights.otio), fcpxml (highlights.fcpxml: "
                            "Final Cut Pro, Resolve), fcp7 (highlights.xml: Premiere, FCP7 XML), edl (CMX 3600 with "
                            "audio), csv, vtt (chapters.vtt), ffmeta (chapters.ffmeta), png (scores.png), "
                            "html (report.html + poster.jpg), json "
                            "(default: all). highlights.json is always written: `render` reads it")


def device_name(text: str) -> str:
    """argparse type of --device: a torch device name, checked without importing torch."""
    from avhighlights.core.devices import check_device_name
    from avhighlights.core.errors import ConfigError

    try:
        return check_device_name(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def export_formats(text: str) -> tuple[str, ...]:
    """'edl, csv' -> ('edl', 'csv'); the names are checked against the renderer's exports by RenderOptions."""
    formats = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    if not formats:
        raise argparse.ArgumentTypeError("expected a comma-separated list of formats, e.g. edl,fcpxml")
    return formats


def render_options(args: argparse.Namespace):
    from avhighlights.pipeline.run import RenderOptions

    formats = {} if args.export is None else {"formats": args.export}
    return RenderOptions(stream_copy=args.stream_copy, write_reel=not args.no_reel, write_clips=not args.no_clips,
                         **formats)
