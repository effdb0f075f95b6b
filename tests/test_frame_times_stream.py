"""The source's frame times are read from ffprobe's listing line by line into one flat float64 array (a 60-min
source is 90,000 packets: never its whole listing as text or as Python objects), and they are PyAV's packets."""

from __future__ import annotations

import subprocess
from array import array

import av
import numpy as np
import pytest

from avhighlights.pipeline import frame_times
from avhighlights.pipeline.probe import probe
from avhighlights.pipeline.synth import SyntheticSpec, make_synthetic_video


@pytest.fixture(scope="module")
def info(tmp_path_factory):
    spec = SyntheticSpec(duration_s=6.0, width=64, height=48, variable_frame_rate=True)
    return probe(make_synthetic_video(tmp_path_factory.mktemp("src") / "vfr.mp4", spec))


def test_packets_stream_into_one_float_array_and_are_the_demuxers(info, monkeypatch):
    def no_whole_listing(*args, **kwargs):
        raise AssertionError("the listing was read whole (subprocess.run)")

    monkeypatch.setattr(frame_times.subprocess, "run", no_whole_listing)
    packets, origin_s = frame_times._read_packets(info)
    assert isinstance(packets, np.ndarray) and packets.dtype == np.float64 and packets.shape[1] == 3
    with av.open(str(info.path)) as container:
        stream = container.streams.video[0]
        demuxed = [(float(p.pts * p.time_base), float(p.dts * p.time_base), p.is_keyframe)
                   for p in container.demux(stream) if p.size > 0]
        start_s = container.start_time / av.time_base
    assert packets.shape[0] == len(demuxed) > 100
    assert np.allclose(packets[:, 0], [d[0] for d in demuxed], atol=2e-6)
    assert np.allclose(packets[:, 1], [d[1] for d in demuxed], atol=2e-6)
    assert (packets[:, 2] > 0).tolist() == [d[2] for d in demuxed]
    assert origin_s == pytest.approx(start_s, abs=2e-6)
    timeline = frame_times.read_timeline(info)
    assert np.allclose(timeline.frame_s, np.sort(packets[:, 0]) - origin_s)


def test_a_listing_line_is_three_floats_or_the_start_time():
    values = array("d")
    assert frame_times._take_line("packet|1.040000|0.960000|K__", values, None) is None
    assert frame_times._take_line("packet|1.080000|N/A|___", values, None) is None
    assert frame_times._take_line("format|0.023220", values, None) == pytest.approx(0.02322)
    assert frame_times._take_line("packet|garbled", values, 0.5) == 0.5
    assert values[:4].tolist() == [1.04, 0.96, 1.0, 1.08]
    assert np.isnan(values[4]) and values[5] == 0.0 and len(values) == 6


def test_an_unreadable_file_has_no_frame_times(tmp_path, info):
    import dataclasses

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(frame_times.CorruptMediaError, match="frame times"):
        frame_times.read_timeline(dataclasses.replace(info, path=bad))
    assert subprocess.run(["ffprobe", "-v", "error", str(bad)], capture_output=True).returncode != 0
