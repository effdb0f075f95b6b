"""bench/speed.py: the smallest piece of its quick mode end to end (one tiny synthetic video, the light path only)
writes a well-formed results file; its import-time analysis and input parsing on known inputs."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
sys.path.insert(0, str(BENCH))

import speed_imports  # noqa: E402  (bench/ is a folder of scripts, not a package)
import speed_inputs  # noqa: E402


def _positive_finite(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_light_path_results_file(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(BENCH / "speed.py"), "--quick", "--lengths", "3@160x120@10",
                           "--stages", "light", "--extractors", "none", "--no-imports", "--work", str(tmp_path / "w"),
                           "--out", str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads((out / "results.json").read_text())
    assert doc["schema"] == "avhighlights/bench-speed/1"
    machine = doc["machine"]
    assert machine["cores"] >= 1 and machine["ffmpeg"].startswith("ffmpeg version")
    assert len(machine["load_avg_start"]) == 3 and len(machine["load_avg_end"]) == 3
    assert machine["gpu"]  # a GPU's name, or the sentence that none was lent
    [entry] = doc["per_input"]
    assert (entry["length_s"], entry["width"], entry["height"], entry["fps"]) == (3, 160, 120, 10)
    assert Path(entry["file"]).is_file() and entry["bytes"] > 0
    decode = entry["decode_full"]
    assert decode["runs"] == 2 and decode["exit_codes"] == [0] and _positive_finite(decode["wall_s_median"])
    assert list(entry["stages"]) == ["light"]
    light = entry["stages"]["light"]
    assert light["exit_code"] == 0
    for key in ("wall_s", "cpu_s", "ratio_to_full_decode", "paired_decode_s", "peak_rss_mb", "peak_tree_rss_mb"):
        assert _positive_finite(light[key]), (key, light[key])
    assert math.isclose(light["ratio_to_full_decode"], light["wall_s"] / light["paired_decode_s"], rel_tol=0.01)
    [light_target] = [t for t in doc["targets"] if t["target"].startswith("light path")]
    assert light_target["status"] == "met" or light_target["status"].startswith("gap:")
    assert any(t["target"] == "GPU default path" for t in doc["targets"])
    assert doc["memory"]["light"]["peak_rss_mb"] == {entry["input"]: light["peak_rss_mb"]}
    markdown = (out / "results.md").read_text()
    assert "## Targets" in markdown and "| light |" in markdown and machine["ffmpeg"] in markdown


IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       100 |        100 | _io
import time:      2000 |       2000 |       heavy._core
import time:       500 |       2500 |     heavy
import time:       300 |       2800 |   pkg.leaf
import time:        50 |       2850 | pkg
import time:       700 |        700 |   heavy.extra
import time:        20 |        720 | other
"""


def test_importtime_parents_costs_and_first_import_chain():
    rows = speed_imports.parse_importtime(IMPORTTIME)
    assert [(r.name, r.depth) for r in rows] == [("_io", 0), ("heavy._core", 3), ("heavy", 2), ("pkg.leaf", 1),
                                                  ("pkg", 0), ("heavy.extra", 1), ("other", 0)]
    up = speed_imports.parents(rows)
    assert up == [None, 2, 3, 4, None, 6, None]
    assert speed_imports.package_costs(rows) == {"heavy": 3200, "pkg": 350, "_io": 100, "other": 20}
    chain = speed_imports.first_import(rows, up, "heavy")
    assert chain == {"avhighlights_chain": [], "via_packages": ["pkg"]}


def test_importtime_chain_names_the_avhighlights_modules_that_pull_a_package_in():
    text = IMPORTTIME.replace("pkg.leaf", "avhighlights.b").replace("| pkg\n", "| avhighlights.a\n")
    analysis = speed_imports.analyse(text)
    heavy = analysis["top_packages"][0]
    assert heavy["package"] == "heavy" and heavy["self_s"] == 0.003  # seconds, to the ms
    assert heavy["avhighlights_chain"] == ["avhighlights.a", "avhighlights.b"] and heavy["via_packages"] == []
    assert analysis["total_import_s"] == 0.004


def test_input_lengths_with_their_own_size():
    specs = speed_inputs.parse_inputs("60, 600,3600@640x360@25", "1280x720,320x240", 30)
    assert [(s.length_s, s.width, s.height, s.fps) for s in specs] == [
        (60, 1280, 720, 30), (60, 320, 240, 30), (600, 1280, 720, 30), (600, 320, 240, 30), (3600, 640, 360, 25)]
    assert len({s.key for s in specs}) == len(specs)  # every parameter is in the cache key
