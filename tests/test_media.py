"""open_media(): audio chunks, frames at times, clips, rotation, VFR and the ffmpeg fallback reader."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from avhighlights.pipeline.frames import clip_indices, frame_index_at, resize_frames
from avhighlights.pipeline.media import open_media, read_audio, sample_times_1fps
from avhighlights.pipeline.probe import probe
from avhighlights.pipeline.synth import SCENE_COLOURS, SyntheticSpec, make_synthetic_video

SR = 16000


def rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i:i + 2], 16) for i in (2, 4, 6)])


def all_frames(media, times_s, **kw) -> np.ndarray:
    return np.concatenate([b.frames for b in media.frames(np.asarray(times_s, float), **kw)])


def ffmpeg_first_frame(path: Path, width: int, height: int) -> np.ndarray:
    """The first frame exactly as ffmpeg shows it (with its own autorotation)."""
    out = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "pipe:"], capture_output=True, check=True).stdout
    return np.frombuffer(out, np.uint8).reshape(height, width, 3)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("media")
    specs = {f"rot{r}.mp4": SyntheticSpec(duration_s=2.0, rotation_deg=r, with_audio=False) for r in (90, 180, 270)}
    specs.update({
        "vfr.mp4": SyntheticSpec(duration_s=6.0, variable_frame_rate=True, with_audio=False),
        "portrait.mp4": SyntheticSpec(duration_s=2.0, width=180, height=320, with_audio=False),
        "hd.mp4": SyntheticSpec(duration_s=2.0, width=1920, height=1080, with_audio=False),
        "clip été 1.mp4": SyntheticSpec(duration_s=4.0, event_times_s=(1.0,)),
        "vp8.webm": SyntheticSpec(duration_s=6.0, video_codec="libvpx", event_times_s=(2.0,)),
    })
    made = {name: make_synthetic_video(root / name, spec) for name, spec in specs.items()}
    made["odd.webm"] = root / "odd.webm"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=2",
                    "-vf", "scale=321:241", "-c:v", "libvpx", str(made["odd.webm"])], check=True, capture_output=True)
    return made


def second_rms(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    n = len(samples) // sample_rate
    return np.sqrt(np.mean(samples[: n * sample_rate].reshape(n, sample_rate) ** 2, axis=1))  # (n,)


# --- audio -------------------------------------------------------------------------------------------

def test_audio_chunks_cover_the_duration_exactly(synthetic_video):
    info = probe(synthetic_video)
    chunks = list(open_media(info).audio_chunks(SR, chunk_s=7.0))
    assert [c.start_s for c in chunks] == [0.0, 7.0, 14.0]
    assert [len(c.samples) for c in chunks[:2]] == [7 * SR, 7 * SR]
    assert sum(len(c.samples) for c in chunks) == round(info.duration_s * SR)
    assert all(c.samples.dtype == np.float32 and c.sample_rate == SR and not c.silent_substitute for c in chunks)


def test_tone_burst_is_heard_at_the_right_seconds(synthetic_video):
    """Bursts at 3-4.5, 11-12.5 and 16-17.5 s (0.8 amplitude) over quiet noise (0.02)."""
    rms = second_rms(read_audio(probe(synthetic_video), SR), SR)
    loud = np.flatnonzero(rms > 0.2)
    assert loud.tolist() == [3, 4, 11, 12, 16, 17]
    assert rms[3] == pytest.approx(0.8 / np.sqrt(2), rel=0.05)  # full second of the sine
    assert np.all(rms[[0, 1, 2, 6, 10, 14, 19]] < 0.05)


def test_burst_onset_within_20_ms(videos):
    audio = read_audio(probe(videos["vp8.webm"]), SR)  # Opus in WebM, burst from 2.0 s to 3.5 s
    envelope = np.sqrt(np.convolve(audio ** 2, np.ones(160) / 160, mode="same"))  # 10-ms RMS
    loud = np.flatnonzero(envelope > 0.3) / SR
    assert loud[0] == pytest.approx(2.0, abs=0.02) and loud[-1] == pytest.approx(3.5, abs=0.02)


def test_no_audio_track_gives_flagged_silence(silent_video):
    info = probe(silent_video)
    chunks = list(open_media(info).audio_chunks(SR, chunk_s=4.0))
    assert [len(c.samples) for c in chunks] == [4 * SR, 2 * SR]
    assert all(c.silent_substitute and not c.samples.any() for c in chunks)


# --- frame selection (hand-computed) -----------------------------------------------------------------

def test_frame_index_at_picks_the_frame_on_screen():
    ts = np.array([0.0, 0.04, 0.08, 0.2, 0.24])  # a gap between 0.08 and 0.2 (VFR)
    got = frame_index_at(ts, np.array([-1.0, 0.0, 0.039, 0.04, 0.15, 0.2, 9.0]))
    assert got.tolist() == [0, 0, 0, 1, 2, 3, 4]


def test_clip_indices():
    ts = np.arange(10) * 0.1  # 10 fps
    assert clip_indices(ts, 0.2, 0.6, 3).tolist() == [2, 3, 4]
    assert clip_indices(ts, 0.2, 0.4, 4).tolist() == [2, 3, 3, 3]  # fewer frames: repeat the last
    assert clip_indices(ts, 0.85, 0.88, 2).tolist() == [8, 8]  # none starts inside: the one on screen


def test_sample_times_1fps():
    info = probe_like(10.3)
    assert sample_times_1fps(info).tolist() == pytest.approx([i + 0.5 for i in range(10)] + [10.15])
    assert sample_times_1fps(probe_like(10.1)).tolist() == pytest.approx([i + 0.5 for i in range(10)])
    assert sample_times_1fps(probe_like(3.0), position=0.0).tolist() == [0.0, 1.0, 2.0]


def probe_like(duration_s: float):
    from fractions import Fraction

    from avhighlights.core.types import VideoInfo

    return VideoInfo(Path("x.mp4"), "", duration_s, Fraction(25), False, 320, 240, 0, "h264", False)


def test_resize_keeps_flat_colour():
    frames = np.full((2, 241, 321, 3), (10, 200, 30), np.uint8)
    out = resize_frames(frames, (112, 96))
    assert out.shape == (2, 112, 96, 3) and out.dtype == np.uint8
    assert np.all(out == np.array([10, 200, 30], np.uint8))


# --- decoded frames ----------------------------------------------------------------------------------

@pytest.mark.parametrize("reader", ["pyav", "decord", "ffmpeg"])
def test_frames_come_from_the_right_scene(synthetic_video, reader):
    """Scenes change colour every 5 s; the top-left corner shows the scene colour."""
    media = open_media(probe(synthetic_video), reader)
    times = [0.5, 4.9, 5.1, 9.9, 10.1, 17.5]
    scenes = [0, 0, 1, 1, 2, 3]
    frames = all_frames(media, times, batch_size=4)
    assert frames.shape == (6, 240, 320, 3) and media.reader_name == reader
    for frame, scene in zip(frames, scenes, strict=True):
        assert np.abs(frame[4, 4].astype(int) - rgb(SCENE_COLOURS[scene])).max() <= 12


@pytest.mark.parametrize("rotation", [90, 180, 270])
@pytest.mark.parametrize("reader", ["pyav", "decord", "ffmpeg"])
def test_rotation_matches_ffmpeg_autorotate(videos, rotation, reader):
    info = probe(videos[f"rot{rotation}.mp4"])
    expected = ffmpeg_first_frame(info.path, info.width, info.height)
    frame = all_frames(open_media(info, reader), [0.0])[0]
    assert frame.shape == (info.height, info.width, 3)
    assert np.abs(frame.astype(int) - expected).mean() < 1.0


def test_vfr_frames_follow_real_timestamps(videos):
    """Frames 2-4 s are thinned out: indices are not t * fps, and all readers agree."""
    info = probe(videos["vfr.mp4"])
    decord_media, ffmpeg_media, pyav_media = (open_media(info, name) for name in ("decord", "ffmpeg", "pyav"))
    ts = decord_media.frame_times_s()
    np.testing.assert_allclose(ts, ffmpeg_media.frame_times_s(), atol=1e-3)
    np.testing.assert_allclose(ts, pyav_media.frame_times_s(), atol=1e-3)
    assert np.diff(ts).max() > 1.5 * np.diff(ts).min()
    times = np.array([1.0, 2.5, 3.3, 5.0])
    assert frame_index_at(ts, times).tolist() != np.round(times * 25).astype(int).tolist()
    a, b, c = (all_frames(media, times) for media in (decord_media, ffmpeg_media, pyav_media))
    assert np.abs(a.astype(int) - b).mean() < 1.0 and np.abs(a.astype(int) - c).mean() < 1.0


@pytest.mark.parametrize("name, shape", [("portrait.mp4", (320, 180)), ("odd.webm", (241, 321)),
                                         ("vp8.webm", (240, 320)), ("clip été 1.mp4", (240, 320))])
def test_fallback_reader_matches_decord(videos, name, shape):
    info = probe(videos[name])
    times = sample_times_1fps(info)
    a = all_frames(open_media(info, "decord"), times)
    b = all_frames(open_media(info, "ffmpeg"), times)
    c = all_frames(open_media(info, "pyav"), times)
    assert a.shape == b.shape == c.shape == (len(times), *shape, 3)
    assert np.abs(a.astype(int) - b).mean() < 3.0 and np.abs(a.astype(int) - c).mean() < 3.0


@pytest.mark.parametrize("reader", ["pyav", "decord"])
def test_decoder_scaling_stays_close_to_the_torch_resize(videos, reader):
    """PyAV scales in the decoder (swscale bilinear); decord's native frames go through the torch resize."""
    info = probe(videos["hd.mp4"])
    times = sample_times_1fps(info)
    scaled = all_frames(open_media(info, reader), times, size=(128, 128)).astype(int)
    torch_resized = resize_frames(all_frames(open_media(info, "decord"), times), (128, 128)).astype(int)
    assert scaled.shape == torch_resized.shape == (len(times), 128, 128, 3)
    assert np.abs(scaled - torch_resized).mean() < 3.0


def test_pyav_scaled_frames_equal_swscale_per_frame_with_one_reformatter(videos, monkeypatch):
    """The reader keeps one swscale context for the whole read; its frames are bit-identical to a fresh
    `frame.reformat` per frame (what it did before), at two sizes and natively."""
    import av

    from avhighlights.pipeline import pyav_reader

    built, real = [], av.video.reformatter.VideoReformatter
    monkeypatch.setattr(pyav_reader, "VideoReformatter", lambda: built.append(1) or real())
    info = probe(videos["hd.mp4"])
    reader = pyav_reader.PyavReader(info)
    got = reader.read_sized({0: [(128, 128), (64, 96), None], 7: [(128, 128), None], 30: [(64, 96)]})
    reader.close()
    with av.open(str(info.path)) as container:
        frames = [f for i, f in enumerate(container.decode(video=0)) if i in (0, 7, 30)]
    for (index, size), array in got.items():
        frame = frames[(0, 7, 30).index(index)]
        if size is None:
            expected = frame.to_ndarray(format="rgb24")
        else:
            expected = frame.reformat(width=size[1], height=size[0], format="rgb24", interpolation="BILINEAR")
            expected = expected.to_ndarray()
        assert np.array_equal(array, expected), (index, size)
    assert len(built) == 1


def test_hd_frames_resized(videos):
    info = probe(videos["hd.mp4"])
    batches = list(open_media(info).frames(sample_times_1fps(info), size=(224, 224), batch_size=1))
    assert len(batches) == 2 and batches[0].frames.shape == (1, 224, 224, 3)
    assert batches[1].times_s.tolist() == [1.5]


@pytest.mark.parametrize("reader", ["pyav", "decord", "ffmpeg"])
def test_clips_are_consecutive_native_frames(synthetic_video, reader):
    media = open_media(probe(synthetic_video), reader)
    starts, ends = np.array([4.0, 9.96, 19.0]), np.array([5.0, 10.0, 20.0])
    batches = list(media.clips(starts, ends, n_frames=4, size=(48, 64), batch_size=2))
    assert [b.frames.shape for b in batches] == [(2, 4, 48, 64, 3), (1, 4, 48, 64, 3)]
    short = batches[0].frames[1]  # [9.96, 10.0) holds one frame at 25 fps: repeated
    assert all(np.array_equal(short[0], f) for f in short[1:])
    full = batches[0].frames[0]  # 4.00, 4.04, 4.08, 4.12 s: the test pattern moves
    assert not np.array_equal(full[0], full[3])


def test_real_clip_frames_and_audio(media_dir):
    info = probe(media_dir / "tears_of_steel_battle_action_70s.webm")
    with open_media(info) as media:
        frames = all_frames(media, [1.5, 35.5, 70.0], size=(166, 400))
        assert frames.shape == (3, 166, 400, 3) and frames.std() > 5
    chunks = list(open_media(probe(media_dir / "his_girl_friday_speech_6s.mp4")).audio_chunks(SR, chunk_s=60.0))
    assert len(chunks) == 1 and len(chunks[0].samples) == round(6.166 * SR)
    assert np.abs(chunks[0].samples).max() > 0.05  # dialogue, not silence


def test_synthetic_videos_are_reproducible_byte_for_byte(tmp_path):
    """The demo's and the tests' videos: the pink noise is seeded, so one spec always gives one file (and the demo
    always the same clips)."""
    spec = SyntheticSpec(duration_s=2.0, event_times_s=(0.5,), event_len_s=0.5)
    first, second = (make_synthetic_video(tmp_path / f"v{i}.mp4", spec).read_bytes() for i in range(2))
    assert first == second
