"""The reel's filter graphs cut every span in one pass over the source (one segment/asegment filter, not a split
with a trim per span, whose cost grew with spans x source length), and cut exactly what per-span trims cut
(real ffmpeg on a small synthetic source, constant and variable frame rate)."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from avhighlights.pipeline import cuts, smart_cut
from avhighlights.pipeline.frame_times import read_timeline
from avhighlights.pipeline.probe import probe
from avhighlights.pipeline.synth import SyntheticSpec, ffmpeg_binary, make_synthetic_video

SPANS_S = [(0.0, 1.2), (1.2, 2.04), (3.52, 5.0), (7.16, 7.64), (10.0, 12.0)]  # adjoining, gaps, up to the end
SAMPLE_RATE = 48000


@pytest.fixture(scope="module", params=[False, True], ids=["cfr", "vfr"])
def source(request, tmp_path_factory):
    spec = SyntheticSpec(duration_s=12.0, width=64, height=48, sample_rate=SAMPLE_RATE,
                         variable_frame_rate=request.param)
    info = probe(make_synthetic_video(tmp_path_factory.mktemp("src") / "src.mp4", spec))
    return info, read_timeline(info)


def _outputs(path, graph: str, tmp_path) -> dict[str, bytes]:
    """The graph's [vout] (16x12 gray frames) and [ac] (f32le samples) as raw bytes, from one ffmpeg run."""
    script = tmp_path / "reel.filtergraph"
    script.write_text(graph)
    formats = {"vout": ("-s", "16x12", "-pix_fmt", "gray", "-fps_mode", "passthrough", "-f", "rawvideo"),
               "ac": ("-f", "f32le")}
    labels = [label for label in formats if f"[{label}]" in graph]
    outputs = [a for label in labels for a in ("-map", f"[{label}]", *formats[label], str(tmp_path / label))]
    subprocess.run([ffmpeg_binary(), "-v", "error", "-nostdin", "-y", "-i", str(path), "-filter_complex_script",
                    str(script), *outputs], check=True)
    return {label: (tmp_path / label).read_bytes() for label in labels}


def test_one_segment_filter_per_stream_whatever_the_span_count():
    spans_s = [(10.0 * i + 1.0, 10.0 * i + 3.0) for i in range(700)]
    graph = smart_cut.reel_audio_graph(spans_s)
    assert graph.count("asegment=") == 1 and "asplit" not in graph and "atrim" not in graph
    assert graph.count("anullsink") == 701 and "concat=n=700:v=0:a=1[ac]" in graph  # 700 gaps + the rest
    lines = cuts.split_at("[0:v:0]", [(0.0, 1.0), (1.0, 2.0), (5.0, 6.0)], audio=False, prefix="v")
    assert lines == ["[0:v:0]segment=timestamps=1.000000|2.000000|5.000000|6.000000"
                     "[vseg0][vseg1][vseg2][vseg3][vseg4]",
                     "[vseg0]setpts=PTS-STARTPTS[v0]", "[vseg1]setpts=PTS-STARTPTS[v1]", "[vseg2]nullsink",  # the gap
                     "[vseg3]setpts=PTS-STARTPTS[v2]", "[vseg4]nullsink"]  # after the last span


def test_reel_audio_is_the_spans_samples_end_to_end(source, tmp_path):
    info, _ = source
    whole = np.frombuffer(_outputs(info.path, "[0:a:0]anull[ac]", tmp_path)["ac"], np.float32)
    graph = smart_cut.reel_audio_graph(SPANS_S).replace("[1:a:0]", "[0:a:0]")
    cut = np.frombuffer(_outputs(info.path, graph, tmp_path)["ac"], np.float32)
    expected = np.concatenate([whole[round(a * SAMPLE_RATE):round(b * SAMPLE_RATE)] for a, b in SPANS_S])
    assert cut.shape == expected.shape and np.array_equal(cut, expected)


def test_reel_from_source_holds_the_spans_frames_and_seconds(source, tmp_path):
    info, timeline = source
    got = _outputs(info.path, cuts.reel_graph(info, SPANS_S, timeline), tmp_path)
    assert len(got["vout"]) // (16 * 12) == sum(timeline.frames_in(a, b) for a, b in SPANS_S)
    assert len(got["ac"]) // 4 == round(sum(b - a for a, b in SPANS_S) * SAMPLE_RATE)
