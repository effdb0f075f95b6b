"""The inline style sheet shared by report.html and the batch index (no external CSS or fonts)."""

PAGE_CSS = """
:root { color-scheme: light; --ink: #1d2330; --muted: #5b6474; --line: #d9dee7; --accent: #1f5fa8; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1240px; padding: 24px 28px 40px; font: 15px/1.45 system-ui, -apple-system,
       "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink); background: #f6f7f9; }
h1 { font-size: 26px; margin: 0 0 4px; word-break: break-all; }
h2 { font-size: 18px; margin: 0 0 10px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 18px;
          margin: 16px 0; }
a { color: var(--accent); word-break: break-all; }
.meta { color: var(--muted); font-size: 13px; margin: 2px 0; }
.warnings { background: #fff7e0; border-color: #f0c24b; }
.warnings ul { margin: 0; padding-left: 20px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; word-break: break-word; }
img.plot { width: 100%; height: auto; display: block; }
video { width: 320px; max-width: 100%; background: #000; border-radius: 4px; display: block; }
video.reel { width: 640px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 8px 10px; border-bottom: 1px solid var(--line); vertical-align: middle; }
th { font-size: 13px; color: var(--muted); font-weight: 600; white-space: nowrap; }
td { font-variant-numeric: tabular-nums; white-space: nowrap; }
td.rank { font-size: 20px; font-weight: 700; }
img.thumb { width: 160px; height: auto; border-radius: 4px; display: block; }
.empty { color: var(--muted); }
footer { color: var(--muted); font-size: 12px; text-align: right; }
"""
