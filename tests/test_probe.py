"""probe(): metadata of valid synthetic and real videos, and one typed error per kind of bad input."""

from __future__ import annotations

import hashlib
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from avhighlights.core.errors import (
    CorruptMediaError,
    MissingFileError,
    NotMediaError,
    NoVideoStreamError,
    UnknownDurationError,
)
from avhighlights.pipeline.probe import content_sha256, probe
from avhighlights.pipeline.synth import SyntheticSpec, make_synthetic_video

# data/README.md: file -> (length s, width, height)
REAL_CLIPS = {
    "tears_of_steel_battle_action_70s.webm": (70.5, 800, 332),
    "autoeditor_speech_then_silence_42s.mp4": (42.5, 1280, 720),
    "bbb_animation_music_30s.webm": (30.0, 1280, 720),
    "his_girl_friday_speech_6s.mp4": (6.2, 640, 480),
    "flower_nature_silent_audio_5s.mp4": (5.1, 960, 540),
    "smpte_bars_tone_sync_10s.mp4": (10.0, 1920, 1080),
    "chaplin_silent_film_music_10s.mp4": (9.6, 640, 360),
    "airplane_landing_11s.mp4": (11.3, 640, 360),
}


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    """Short synthetic videos of every valid kind the pipeline must accept."""
    root = tmp_path_factory.mktemp("probe")
    specs = {
        "portrait.mp4": SyntheticSpec(duration_s=3.0, width=180, height=320),
        "rot90.mp4": SyntheticSpec(duration_s=3.0, rotation_deg=90),
        "vfr.mp4": SyntheticSpec(duration_s=6.0, variable_frame_rate=True),
        "hd.mp4": SyntheticSpec(duration_s=2.0, width=1920, height=1080, with_audio=False),
        "clip été 1.mp4": SyntheticSpec(duration_s=3.0),
        "vp8.webm": SyntheticSpec(duration_s=3.0, video_codec="libvpx"),
    }
    made = {name: make_synthetic_video(root / name, spec) for name, spec in specs.items()}
    made["odd.mp4"] = root / "odd.mp4"  # 4:4:4 H.264 allows odd sizes; synth's yuv420p does not
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=2", "-vf", "scale=321:241", "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv444p", str(made["odd.mp4"]))
    return made


def test_normal_video(synthetic_video: Path):
    info = probe(synthetic_video)
    assert info.duration_s == pytest.approx(20.0, abs=0.05)
    assert (info.width, info.height, info.rotation_deg) == (320, 240, 0)
    assert info.fps == Fraction(25) and not info.variable_frame_rate
    audio = (info.audio_codec, info.audio_sample_rate, info.audio_channels)
    assert info.video_codec == "h264" and audio == ("aac", 44100, 1)
    assert info.has_audio and "mp4" in info.container
    assert info.size_bytes == synthetic_video.stat().st_size
    assert info.sha256 == hashlib.sha256(synthetic_video.read_bytes()).hexdigest()


def test_video_without_audio_is_valid(silent_video: Path):
    info = probe(silent_video)
    assert not info.has_audio and info.audio_codec is None and info.audio_sample_rate is None
    assert info.duration_s == pytest.approx(6.0, abs=0.05)


def test_portrait_and_rotation_give_displayed_size(videos):
    portrait = probe(videos["portrait.mp4"])
    assert (portrait.width, portrait.height, portrait.rotation_deg) == (180, 320, 0)
    rotated = probe(videos["rot90.mp4"])  # stored 320x240, displayed upright as 240x320
    assert (rotated.width, rotated.height, rotated.rotation_deg) == (240, 320, 90)


def test_variable_frame_rate_flagged(videos):
    info = probe(videos["vfr.mp4"])
    assert info.variable_frame_rate
    assert 15 < float(info.fps) < 25  # the average rate, below the nominal 25 fps


@pytest.mark.parametrize("name, size, codec", [
    ("hd.mp4", (1920, 1080), "h264"), ("odd.mp4", (321, 241), "h264"),
    ("clip été 1.mp4", (320, 240), "h264"), ("vp8.webm", (320, 240), "vp8"),
])
def test_sizes_codecs_and_names(videos, name, size, codec):
    info = probe(videos[name])
    assert ((info.width, info.height), info.video_codec) == (size, codec)
    assert info.path == videos[name] and info.duration_s > 0


def test_content_sha256_streams_blocks(tmp_path):
    path = tmp_path / "blob.bin"
    data = bytes(range(256)) * 9000  # 2.3 MB: more than two 1-MiB blocks
    path.write_bytes(data)
    assert content_sha256(path) == hashlib.sha256(data).hexdigest()


def test_missing_file(tmp_path):
    with pytest.raises(MissingFileError, match="not found") as err:
        probe(tmp_path / "nope.mp4")
    assert "nope.mp4" in str(err.value)


def test_directory(tmp_path):
    with pytest.raises(MissingFileError, match="directory"):
        probe(tmp_path)


def test_text_file_named_mp4(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("these are not the frames you are looking for\n")
    with pytest.raises(NotMediaError, match="notes.mp4"):
        probe(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.touch()
    with pytest.raises(NotMediaError, match="empty"):
        probe(path)


def test_truncated_mp4(synthetic_video: Path, tmp_path):
    data = synthetic_video.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: int(0.3 * len(data))])
    with pytest.raises(CorruptMediaError, match="cut.mp4"):
        probe(path)


def test_truncated_faststart_mp4_fails_the_decode_check(synthetic_video: Path, tmp_path):
    """moov first: ffprobe still reads the header, so only the last-second decode check catches it."""
    full = tmp_path / "fast.mp4"
    ffmpeg("-i", str(synthetic_video), "-c", "copy", "-movflags", "+faststart", str(full))
    cut = tmp_path / "fast_cut.mp4"
    cut.write_bytes(full.read_bytes()[: int(0.3 * full.stat().st_size)])
    with pytest.raises(CorruptMediaError, match="last second"):
        probe(cut)


def test_truncated_webm(videos, tmp_path):
    cut = tmp_path / "cut.webm"
    cut.write_bytes(videos["vp8.webm"].read_bytes()[: int(0.3 * videos["vp8.webm"].stat().st_size)])
    with pytest.raises(CorruptMediaError, match="cut.webm"):
        probe(cut)


def test_audio_only(tmp_path):
    path = tmp_path / "song.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=d=2", "-c:a", "aac", str(path))
    with pytest.raises(NoVideoStreamError, match="audio-only"):
        probe(path)


def test_cover_art_counts_as_no_video(tmp_path):
    cover, song = tmp_path / "cover.png", tmp_path / "song_with_cover.m4a"
    ffmpeg("-f", "lavfi", "-i", "color=red:s=64x64", "-frames:v", "1", str(cover))
    ffmpeg("-f", "lavfi", "-i", "sine=d=2", "-i", str(cover), "-map", "0", "-map", "1", "-c:a", "aac",
           "-c:v", "png", "-disposition:v:0", "attached_pic", str(song))
    with pytest.raises(NoVideoStreamError, match="audio-only"):
        probe(song)


def test_still_image_has_unknown_duration(tmp_path):
    path = tmp_path / "still.png"
    ffmpeg("-f", "lavfi", "-i", "color=red:s=64x48", "-frames:v", "1", str(path))
    with pytest.raises(UnknownDurationError, match="still.png"):
        probe(path)


@pytest.mark.parametrize("name", sorted(REAL_CLIPS))
def test_real_clips_match_the_data_readme(media_dir: Path, name: str):
    length_s, width, height = REAL_CLIPS[name]
    info = probe(media_dir / name)
    assert info.duration_s == pytest.approx(length_s, abs=0.06)
    assert (info.width, info.height) == (width, height)
    assert info.has_audio and not info.variable_frame_rate
