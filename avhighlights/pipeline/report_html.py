"""`report.html`: one self-contained page per video, written beside highlights.json.

The page embeds everything it shows (the score plot as a base64 PNG, one base64 JPEG still per clip
taken at the clip's best-scoring second, inline CSS, no script); the only files it refers to are the
media it plays: the written clips and the reel by relative link, or, when no clips were written, the
source video by absolute `file://` URL with a media fragment `#t=start,end`. Every text is
HTML-escaped. The rank-1 still is also written as `poster.jpg`, which the batch index shows.
"""

from __future__ import annotations

import base64
import dataclasses
import html
from collections.abc import Iterator
from pathlib import Path
from string import Template
from urllib.parse import quote

from avhighlights.core.atomic import atomic_path, write_bytes
from avhighlights.core.errors import AVHighlightsError
from avhighlights.pipeline.plot import plot_png
from avhighlights.pipeline.report_facts import (
    best_second_s,
    hms,
    threshold_score,
    total_highlight_s,
    video_name,
    warnings_of,
)
from avhighlights.pipeline.report_style import PAGE_CSS
from avhighlights.pipeline.results import ClipEntry, HighlightsDoc
from avhighlights.pipeline.thumbs import still_jpeg, stills_jpeg

REPORT_NAME = "report.html"
POSTER_NAME = "poster.jpg"
# Stills for the best-ranked clips only: each still seeks and decodes from the keyframe before it (one GOP), so
# stills for every clip cost ~0.7x a full decode of a 10-min file at the default selection (151 stills, 14 s of 20 s
# with ffmpeg processes).
REPORT_STILLS = 48
RESULT_SUFFIXES = (".json", ".csv", ".edl", ".vtt", ".ffmeta", ".png", ".otio", ".fcpxml", ".xml")

PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>$css</style>
</head>
<body>
<header>
<h1>$name</h1>
<p class="meta">$video_meta</p>
<p class="meta">source: <a href="$source_url">$source</a></p>
</header>
$warnings
<section class="facts"><dl>$facts</dl></section>
<section>
<h2>Score over time</h2>
<img class="plot" alt="highlight score per second with the selected clips shaded" src="data:image/png;base64,$plot">
</section>
<section>
<h2>Clips</h2>
$clips
</section>
$reel
<footer>avhighlights $tool_version &middot; written $created</footer>
</body>
</html>
""")


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def write_report(doc: HighlightsDoc, target: str | Path) -> Path:
    """Write report.html for `doc` to `target` (and `poster.jpg` beside it when a still can be taken)."""
    target = Path(target)
    stills, problems = _stills(doc)
    poster = stills.get(min(c.rank for c in doc.clips)) if doc.clips else _video_still(doc, problems)
    if poster:
        write_bytes(target.parent / POSTER_NAME, poster)
    with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8") as out:
        out.writelines(report_pieces(doc, stills, problems, _result_files(target.parent)))
    return target


def report_text(doc: HighlightsDoc, stills: dict[int, bytes], problems: list[str],
                result_files: tuple[str, ...] = ()) -> str:
    """The page for `doc`; `stills` maps clip rank -> JPEG bytes; `problems` are shown as warnings;
    `result_files` (names beside the page) are linked."""
    return "".join(report_pieces(doc, stills, problems, result_files))


def report_pieces(doc: HighlightsDoc, stills: dict[int, bytes], problems: list[str],
                  result_files: tuple[str, ...] = ()) -> Iterator[str]:
    """The page in pieces (the head, one table row per clip, the tail), so that writing it never holds the whole
    page: with a still per clip it grows with the clip count (706 clips of a 60-min source: about 7 MB of base64
    text, which a page built as one string held several times over)."""
    name = video_name(doc)
    head, tail = PAGE.template.split("$clips")
    yield Template(head).substitute(
        title=esc(f"{name}: highlights"), css=PAGE_CSS, name=esc(name), video_meta=esc(_video_meta(doc)),
        source_url=esc(_source_uri(doc)), source=esc(doc.video.path),
        warnings=_warnings_html(warnings_of(doc) + problems), facts=_facts_html(doc, result_files),
        plot=base64.b64encode(plot_png(doc)).decode("ascii"))
    yield from _clips_html(doc, stills)
    yield Template(tail).substitute(reel=_reel_html(doc), tool_version=esc(doc.tool_version),
                                    created=esc(doc.created_utc or "unknown"))


def _stills(doc: HighlightsDoc) -> tuple[dict[int, bytes], list[str]]:
    """rank -> JPEG still at the clip's best second for the `REPORT_STILLS` best-ranked clips (all from one
    opened source), and what failed."""
    if doc.clips and not Path(doc.video.path).is_file():
        return {}, [f"no stills: the source video {doc.video.path} is missing"]
    best = sorted(doc.clips, key=lambda clip: clip.rank)[:REPORT_STILLS]
    taken = dict(zip((c.rank for c in best), stills_jpeg(doc.video, [best_second_s(doc, c) for c in best]),
                     strict=True))
    stills = {rank: still for rank, still in taken.items() if isinstance(still, bytes)}
    return stills, [f"no still for clip #{rank}: {still}" for rank, still in taken.items()
                    if not isinstance(still, bytes)]


def _video_still(doc: HighlightsDoc, problems: list[str]) -> bytes | None:
    """A still at the video's best second (its middle without scores), for the index when there are no clips."""
    if not Path(doc.video.path).is_file():
        return None
    whole = ClipEntry(0.0, doc.video.duration_s, 0.0, 1)
    try:
        return still_jpeg(doc.video, best_second_s(doc, whole))
    except AVHighlightsError as exc:
        problems.append(f"no poster still: {exc}")
        return None


def _source_uri(doc: HighlightsDoc) -> str:
    return Path(doc.video.path).resolve().as_uri()


def _video_meta(doc: HighlightsDoc) -> str:
    v = doc.video
    audio = f"{v.audio_codec or 'audio'} {v.audio_channels or '?'} ch" if v.has_audio else "no audio"
    fps = f"{float(v.fps):.3f}".rstrip("0").rstrip(".")
    return f"{hms(v.duration_s)} · {v.width}x{v.height} · {fps} fps · {v.video_codec} · {audio}"


def _result_files(folder: Path) -> tuple[str, ...]:
    """highlights.json and the result files already written beside the page (exports, plot)."""
    present = {p.name for p in folder.iterdir() if p.is_file() and p.suffix in RESULT_SUFFIXES
               and not p.name.startswith(".")}
    return tuple(sorted(present | {"highlights.json"}))


def _facts_html(doc: HighlightsDoc, result_files: tuple[str, ...]) -> str:
    threshold = threshold_score(doc)
    total_s = total_highlight_s(doc)
    share = f" ({100.0 * total_s / doc.video.duration_s:.1f} % of the video)" if doc.video.duration_s > 0 else ""
    settings = ", ".join(f"{k} {v}" for k, v in dataclasses.asdict(doc.selection).items())
    rows = [
        ("method", doc.method), ("checkpoint", doc.checkpoint or "none (the method needs no training)"),
        ("extractor binding", binding_text(doc)),
        ("clips", f"{len(doc.clips)}, {hms(total_s)} in all{share}"),
        ("selection threshold", "none" if threshold is None else f"{threshold:.6g}"),
        ("selection settings", settings), ("reel", doc.reel or "not written"),
    ]
    facts = [f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in rows]
    if result_files:
        links = " · ".join(f'<a href="{esc(quote(name))}">{esc(name)}</a>' for name in result_files)
        facts.append(f"<dt>result files</dt><dd>{links}</dd>")
    return "\n".join(facts)


def binding_text(doc: HighlightsDoc) -> str:
    """role -> extractor: the binding highlights.json recorded (what scored), else, for files written before
    it was recorded, the checkpoint's binding or the method's default binding."""
    from avhighlights.models import METHODS
    from avhighlights.models.checkpoint import read_checkpoint_info

    if doc.extractors is not None:
        return recorded_binding_text(doc)
    if doc.checkpoint:
        try:
            binding = read_checkpoint_info(doc.checkpoint).binding
        except (AVHighlightsError, OSError) as exc:
            return f"unknown (checkpoint not readable: {exc})"
        return ", ".join(f"{role}: {src.name} {src.version}" for role, src in binding.items()) + " (checkpoint)"
    try:
        default = METHODS.get(doc.method).default_binding
    except AVHighlightsError:
        return f"unknown (method {doc.method!r} is not registered)"
    if not default:
        return "none (the method reads no features)"
    return ", ".join(f"{role}: {name}" for role, name in default.items()) + " (the method's default)"


def recorded_binding_text(doc: HighlightsDoc) -> str:
    """The recorded binding, and whether it is the checkpoint's, the method's default or a bound one."""
    from avhighlights.models import METHODS

    if not doc.extractors:
        return "none (the method reads no features)"
    text = ", ".join(f"{role}: {src.name} {src.version}" for role, src in doc.extractors.items())
    if doc.checkpoint:
        return text + " (checkpoint)"
    try:
        default = METHODS.get(doc.method).default_binding
    except AVHighlightsError:
        return text
    if {role: src.name for role, src in doc.extractors.items()} == dict(default):
        return text + " (the method's default)"
    return text + " (bound at run time; the method's default: " + ", ".join(
        f"{role}: {name}" for role, name in default.items()) + ")"


def _warnings_html(warnings: list[str]) -> str:
    if not warnings:
        return ""
    items = "\n".join(f"<li>{esc(w)}</li>" for w in warnings)
    return f'<section class="warnings"><h2>Warnings</h2><ul>{items}</ul></section>'


def _reel_html(doc: HighlightsDoc) -> str:
    if not doc.reel:
        return ""
    return (f'<section><h2>Reel</h2><video class="reel" controls preload="metadata" src="{esc(quote(doc.reel))}">'
            f'</video><p class="meta">{esc(doc.reel)}: every clip in time order</p></section>')


def _clips_html(doc: HighlightsDoc, stills: dict[int, bytes]) -> Iterator[str]:
    if not doc.clips:
        yield '<p class="empty">No clips were selected.</p>'
        return
    note = "" if any(c.path for c in doc.clips) else (
        '<p class="meta">No clip files were written (--no-clips): each player plays its span of the source.</p>')
    head = ("<tr><th>rank</th><th>still (best second)</th><th>start</th><th>end</th><th>duration</th>"
            "<th>score</th><th>play</th></tr>")
    yield f'{note}<table class="clips"><thead>{head}</thead><tbody>\n'
    for clip in sorted(doc.clips, key=lambda c: c.rank):
        yield _clip_row(doc, clip, stills.get(clip.rank)) + "\n"
    yield "</tbody></table>"


def _clip_row(doc: HighlightsDoc, clip: ClipEntry, still: bytes | None) -> str:
    best_s = best_second_s(doc, clip)
    if still:
        image = (f'<img class="thumb" alt="{esc(f"clip {clip.rank} at {hms(best_s)}")}" '
                 f'src="data:image/jpeg;base64,{base64.b64encode(still).decode("ascii")}">'
                 f'<div class="meta">at {esc(hms(best_s))}</div>')
    elif clip.rank > REPORT_STILLS:
        image = f'<span class="meta">stills for the {REPORT_STILLS} best clips only</span>'
    else:
        image = '<span class="meta">no still</span>'
    if clip.path:
        player = f'<video controls preload="metadata" src="{esc(quote(clip.path))}"></video>'
        caption = clip.path
    else:
        fragment = f"#t={clip.start_s:.3f},{clip.end_s:.3f}"
        player = f'<video controls preload="metadata" src="{esc(_source_uri(doc) + fragment)}"></video>'
        caption = "source (no clip written)"
    cells = [f'<td class="rank">{clip.rank}</td>', f"<td>{image}</td>", f"<td>{esc(hms(clip.start_s))}</td>",
             f"<td>{esc(hms(clip.end_s))}</td>", f"<td>{clip.duration_s:.3f} s</td>", f"<td>{clip.score:.4g}</td>",
             f'<td>{player}<div class="meta">{esc(caption)}</div></td>']
    return "<tr>" + "".join(cells) + "</tr>"
