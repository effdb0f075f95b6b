"""One decode pass per video for every extractor that declares its frames, in bounded chunks."""

from __future__ import annotations

import numpy as np
import pytest

from avhighlights.core.frame_requests import ClipRequest, FrameRequest
from avhighlights.extractors.base import create_extractor
from avhighlights.pipeline import pyav_reader
from avhighlights.pipeline.extract import extract_features
from avhighlights.pipeline.frame_plan import PassStats, serve_requests
from avhighlights.pipeline.media import open_media
from avhighlights.pipeline.probe import probe

TINY_SWIN = {"embed_dim": 16, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 1, 1], "image_size": 56, "crop_pct": 1.0}


def _fake_reader(n_frames: int, calls: list):
    """read_sized over a pretend video whose frame i is filled with i % 251 (so the tests can check which frame)."""
    def read_sized(wanted):
        calls.append(sorted(wanted))
        return {(i, size): np.full((*(size or (2, 2)), 3), i % 251, np.uint8) for i in wanted for size in wanted[i]}
    return read_sized


def _serve(n_frames: int, fps: float, requests, chunk_frames: int = 32):
    calls, stats = [], PassStats()
    timestamps = np.arange(n_frames) / fps
    out = list(serve_requests(_fake_reader(n_frames, calls), timestamps, requests, chunk_frames, stats))
    return out, calls, stats


def _requests(duration_s: float):
    times = np.arange(duration_s) + 0.5
    starts = np.arange(duration_s)
    return [FrameRequest(times, (4, 4), batch_size=8), FrameRequest(np.arange(0, duration_s, 0.2) + 0.1, (3, 5), 16),
            ClipRequest(starts, starts + 1.0, 4, (4, 4), batch_size=2)]


def test_every_frame_is_read_once_in_ascending_order_and_batches_are_right():
    out, calls, stats = _serve(25 * 60, 25.0, _requests(60))
    flat = [i for call in calls for i in call]
    assert flat == sorted(set(flat)) and stats.frames_read == len(flat)  # one forward pass, nothing twice
    frames = [b for n, b in out if n == 0]
    assert [len(b.times_s) for b in frames] == [8] * 7 + [4]
    picked = np.concatenate([b.frames[:, 0, 0, 0] for b in frames])
    np.testing.assert_array_equal(picked, (np.arange(60) * 25 + 12) % 251)  # the frame on screen at t + 0.5
    clips = [b for n, b in out if n == 2]
    assert clips[0].frames.shape == (2, 4, 4, 4, 3) and clips[0].frames[1, :, 0, 0, 0].tolist() == [25, 26, 27, 28]
    assert [b.frames.shape[1:3] for n, b in out if n == 1][0] == (3, 5)


@pytest.mark.parametrize("minutes", [1, 20])
def test_frames_held_stay_within_one_chunk_plus_the_open_batches_whatever_the_length(minutes):
    _, _, stats = _serve(30 * 60 * minutes, 30.0, _requests(60 * minutes), chunk_frames=32)
    assert stats.peak_frames_held <= 32 + 8 + 16 + 2 * 4


def test_the_pull_path_is_the_same_machinery():
    out, _, _ = _serve(250, 25.0, [FrameRequest(np.array([0.0, 3.3, 3.31, 9.99]), None, batch_size=3)])
    assert [b.frames[:, 0, 0, 0].tolist() for _, b in out] == [[0, 82, 82], [249]]


def _count_decodes(monkeypatch):
    opened, decoded = [], []
    original_init, original_close = pyav_reader.PyavReader.__init__, pyav_reader.PyavReader.close

    def init(self, info):
        opened.append(info.path)
        original_init(self, info)

    def close(self):
        decoded.append(self.frames_decoded)
        original_close(self)

    monkeypatch.setattr(pyav_reader.PyavReader, "__init__", init)
    monkeypatch.setattr(pyav_reader.PyavReader, "close", close)
    return opened, decoded


def test_two_frame_extractors_and_a_clip_extractor_share_one_decode(silent_video, monkeypatch):
    info = probe(silent_video)
    extractors = [create_extractor("mobilenet_v1_025", {"random_init": True, "image_size": 64}, device="cpu"),
                  create_extractor("swin", {"random_init": True, **TINY_SWIN}, device="cpu"),
                  create_extractor("r3d18_tv", {"random_init": True, "resize_hw": [40, 48], "crop_size": 32,
                                                "clip_frames": 4}, device="cpu"),
                  create_extractor("loudness", device="cpu")]  # pulls its audio itself: not served by the pass
    opened, decoded = _count_decodes(monkeypatch)
    tracks = extract_features(info, extractors)
    n_video_frames = round(info.duration_s * float(info.fps))
    assert len(opened) == 1 and len(decoded) == 1 and decoded[0] <= n_video_frames  # one reader, one forward pass
    for extractor in extractors:  # the same rows as each extractor pulling on its own
        with open_media(info) as media:
            np.testing.assert_array_equal(tracks[extractor.name].values, extractor.extract(media).values)
    assert len(opened) == 1 + 3  # one decode per extractor on the per-extractor path


@pytest.mark.slow
def test_shared_pass_equals_the_per_extractor_path_on_a_real_clip(media_dir, shared_weights_dir, monkeypatch):
    monkeypatch.setenv("AVH_WEIGHTS_DIR", str(shared_weights_dir))
    info = probe(media_dir / "airplane_landing_11s.mp4")
    mobilenet = create_extractor("mobilenet_v1_025", device="cpu")
    r3d = create_extractor("r3d18_tv", {"random_init": True, "clip_frames": 4}, device="cpu")
    opened, _ = _count_decodes(monkeypatch)
    tracks = extract_features(info, [mobilenet, r3d])
    assert len(opened) == 1
    for extractor in (mobilenet, r3d):
        with open_media(info) as media:
            np.testing.assert_array_equal(tracks[extractor.name].values, extractor.extract(media).values)
