"""`OUT/index.html`: the batch page listing every video whose results lie in `OUT/*/highlights.json`.

Rebuilt from the folder after each run, so successive runs into one output folder accumulate. Each
row links to the video's `report.html` and shows its `poster.jpg` (relative links inside OUT); a
results file that cannot be read is listed with the reason instead of failing the run.
"""

from __future__ import annotations

import html
from pathlib import Path
from string import Template
from urllib.parse import quote

from avhighlights.core.atomic import write_text
from avhighlights.pipeline.report_facts import hms, total_highlight_s, video_name, warnings_of
from avhighlights.pipeline.report_html import POSTER_NAME, REPORT_NAME
from avhighlights.pipeline.report_style import PAGE_CSS
from avhighlights.pipeline.results import ResultsError, read_results, utc_now

INDEX_NAME = "index.html"
RESULTS_NAME = "highlights.json"

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
<h1>$title</h1>
<p class="meta">$summary</p>
</header>
<section>
<table class="videos">
<thead><tr><th>still</th><th>video</th><th>duration</th><th>clips</th><th>highlights</th><th>method</th>
<th>written</th><th>warnings</th></tr></thead>
<tbody>
$rows
</tbody>
</table>
</section>
<footer>updated $updated</footer>
</body>
</html>
""")


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def write_index(out_root: str | Path) -> Path:
    """(Re)write `out_root/index.html` from every `out_root/*/highlights.json`."""
    out_root = Path(out_root)
    return write_text(out_root / INDEX_NAME, index_text(out_root))


def refresh_index(out_dir: str | Path) -> Path | None:
    """Rewrite the index of the batch folder above `out_dir` when it already has one (after a `render`)."""
    out_root = Path(out_dir).resolve().parent
    return write_index(out_root) if (out_root / INDEX_NAME).is_file() else None


def index_text(out_root: Path) -> str:
    rows, n_ok, n_clips, total_s = [], 0, 0, 0.0
    for results in sorted(out_root.glob(f"*/{RESULTS_NAME}")):
        folder = results.parent.name
        try:
            doc = read_results(results)
        except ResultsError as exc:
            rows.append(_broken_row(folder, exc))
            continue
        n_ok, n_clips, total_s = n_ok + 1, n_clips + len(doc.clips), total_s + total_highlight_s(doc)
        rows.append(_row(results.parent, folder, doc))
    title = f"Highlights: {out_root.resolve().name or out_root.resolve()}"
    summary = f"{_count(n_ok, 'video')}, {_count(n_clips, 'clip')}, {hms(total_s)} of highlights"
    body = "\n".join(rows) or '<tr><td colspan="8" class="empty">No results in this folder yet.</td></tr>'
    return PAGE.substitute(title=esc(title), css=PAGE_CSS, summary=esc(summary), rows=body, updated=esc(utc_now()))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _href(folder: str, name: str) -> str:
    return esc(f"{quote(folder)}/{quote(name)}")


def _row(video_dir: Path, folder: str, doc) -> str:
    still = (f'<img class="thumb" alt="{esc(video_name(doc))}" src="{_href(folder, POSTER_NAME)}">'
             if (video_dir / POSTER_NAME).is_file() else '<span class="meta">no still</span>')
    name = esc(video_name(doc))
    link = (f'<a href="{_href(folder, REPORT_NAME)}">{name}</a>' if (video_dir / REPORT_NAME).is_file()
            else f'{name} <span class="meta">(no report.html)</span>')
    if folder != Path(video_name(doc)).stem:  # a suffixed folder (two inputs shared a name)
        link += f'<div class="meta">{esc(folder)}/</div>'
    cells = [still, link, esc(hms(doc.video.duration_s)), str(len(doc.clips)), esc(hms(total_highlight_s(doc))),
             esc(doc.method), esc(doc.created_utc or ""), esc("; ".join(w.split(":")[0] for w in warnings_of(doc)))]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _broken_row(folder: str, exc: ResultsError) -> str:
    return (f'<tr><td></td><td>{esc(folder)}</td><td colspan="6" class="meta">unreadable '
            f"{esc(RESULTS_NAME)}: {esc(exc.problem)} (field {esc(exc.field_name)})</td></tr>")
