"""The A_d transient test (issue #5): real clips (their audio, at half level) with 100-ms broadband
bursts mixed in at known seconds (the labelled highlights) and, as distractors, sustained 440-Hz
tones as loud as the bursts. The log-Mel goes through the pipeline (`logmel` extractor via
`extract_features` on the muxed video); an A_d-only DAViHD (faithful FDY CNN, a narrow dynamics
projection so that it trains on a CPU) is trained on the labels.

Finding: the spec's CNN pools time by 2 x 2 on the 1-fps spectrogram, so the dynamics pathway holds
one feature per 4 s (adaptive pooling only repeats it); a burst can at best be placed in its 4-s
block, not in its second, unless the network learns the position inside the block from the
positional encoding. Layouts therefore keep one event per 4-s block, and AP is measured per block.
The always-run test checks the data; the training test is slow (minutes on a shared CPU)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from avhighlights.extractors.base import create_extractor
from avhighlights.models.base import Sample, create_method
from avhighlights.pipeline.extract import extract_features
from avhighlights.pipeline.probe import probe
from avhighlights.pipeline.synth import ffmpeg_binary

SAMPLE_RATE = 16000
BURST_S = 0.1
BURST_OFFSET_S = 0.45  # a burst starts 0.45 s into its second, so it lies inside it
BURST_STD = 0.5
TONE_S = 1.5  # distractors: sustained 440-Hz tones as loud as the bursts, never highlights
TONE_AMPLITUDE = 0.5
BLOCK_STEPS = 4  # the dynamics CNN pools time by 2 x 2 (spec §1.3 row 3): one feature per 4 s
MEDIA = ("tears_of_steel_battle_action_70s.webm", "autoeditor_speech_then_silence_42s.mp4",
         "bbb_animation_music_30s.webm")
TRAIN_CLIPS = ((MEDIA[0], 0.0, 24.0), (MEDIA[0], 24.0, 24.0), (MEDIA[1], 0.0, 24.0), (MEDIA[2], 0.0, 20.0))
TEST_CLIPS = ((MEDIA[0], 48.0, 20.0), (MEDIA[1], 24.0, 16.0), (MEDIA[2], 20.0, 10.0))
DYNAMICS_ONLY = {"modalities": ["dynamics"], "dynamics_dim": 32, "dynamics_heads": 4, "preset": "code",
                 "batch_size": 4, "drop_last": False}


def decode_audio(clip: Path, start_s: float, duration_s: float) -> np.ndarray:
    """Mono 16-kHz float32 samples of [start_s, start_s + duration_s)."""
    cmd = [ffmpeg_binary(), "-v", "error", "-ss", str(start_s), "-t", str(duration_s), "-i", str(clip),
           "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "f32le", "-"]
    return np.frombuffer(subprocess.run(cmd, check=True, capture_output=True).stdout, dtype=np.float32).copy()


def add_events(audio: np.ndarray, bursts: np.ndarray, tones: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`audio` at half level plus a 100-ms white-noise burst 0.45 s into each second of `bursts` and a
    1.5-s 440-Hz tone from each second of `tones`."""
    mixed = 0.5 * audio
    burst_len, tone_len = int(BURST_S * SAMPLE_RATE), int(TONE_S * SAMPLE_RATE)
    for second in bursts:
        piece = mixed[int((second + BURST_OFFSET_S) * SAMPLE_RATE):][:burst_len]
        piece += rng.normal(0.0, BURST_STD, size=piece.shape)
    for second in tones:
        piece = mixed[int(second * SAMPLE_RATE):][:tone_len]
        piece += TONE_AMPLITUDE * np.sin(2 * np.pi * 440.0 * np.arange(piece.size) / SAMPLE_RATE)
    return np.clip(mixed, -1.0, 1.0).astype(np.float32)


def event_layout(n_seconds: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Burst seconds and tone seconds: each 4-s block gets a burst, a tone or nothing (at least one
    burst block and one block without a burst per clip)."""
    n_blocks = n_seconds // BLOCK_STEPS
    kinds = rng.permutation(np.resize(np.array(["burst", "tone", "none"]), n_blocks))
    bursts = [BLOCK_STEPS * b + int(rng.integers(0, BLOCK_STEPS)) for b in range(n_blocks) if kinds[b] == "burst"]
    tones = [BLOCK_STEPS * b + int(rng.integers(0, 2)) for b in range(n_blocks) if kinds[b] == "tone"]
    return np.array(bursts, dtype=int), np.array(tones, dtype=int)


def write_video(audio: np.ndarray, out: Path) -> Path:
    """`audio` muxed with a small black video stream of the same duration into a Matroska file."""
    duration_s = audio.size / SAMPLE_RATE
    cmd = [ffmpeg_binary(), "-v", "error", "-y", "-f", "lavfi", "-i", f"color=c=black:s=64x36:r=5:d={duration_s}",
           "-f", "f32le", "-ar", str(SAMPLE_RATE), "-ac", "1", "-i", "-", "-map", "0:v:0", "-map", "1:a:0",
           "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "pcm_s16le", "-t", str(duration_s), str(out)]
    subprocess.run(cmd, input=audio.tobytes(), check=True, capture_output=True)
    return out


def burst_sample(clip: Path, start_s: float, duration_s: float, out: Path, rng: np.random.Generator) -> Sample:
    """A video with bursts and distractor tones mixed in, its log-Mel from the pipeline, 0/1 labels
    on the burst seconds."""
    bursts, tones = event_layout(int(duration_s), rng)
    audio = add_events(decode_audio(clip, start_s, duration_s), bursts, tones, rng)
    info = probe(write_video(audio, out))
    logmel = extract_features(info, [create_extractor("logmel")])["logmel"].values  # (T, 128)
    labels = np.zeros(len(logmel), dtype=np.float32)
    labels[bursts[bursts < len(logmel)]] = 1.0
    return Sample(out.stem, {"logmel": logmel.astype(np.float32)}, 1.0, labels, meta={"tones": tones})


def block_ap(method, samples: list[Sample]) -> float:
    """Mean over clips of the AP of 4-s blocks: label = the block holds a burst, score = mean step score."""
    aps = []
    for sample in samples:
        n = sample.n_steps // BLOCK_STEPS * BLOCK_STEPS
        labels = sample.labels[:n].reshape(-1, BLOCK_STEPS).max(axis=1)
        scores = method.predict(sample)[:n].reshape(-1, BLOCK_STEPS).mean(axis=1)
        aps.append(average_precision_score(labels, scores))
    return float(np.mean(aps))


def step_ap(method, samples: list[Sample]) -> float:
    """Mean over clips of the AP of 1-s steps (bounded by the 4-s resolution of the pathway)."""
    return float(np.mean([average_precision_score(s.labels, method.predict(s)) for s in samples]))


@pytest.fixture(scope="module")
def burst_sets(media_dir, tmp_path_factory):
    rng = np.random.default_rng(0)
    out = tmp_path_factory.mktemp("bursts")
    train = [burst_sample(media_dir / name, start, dur, out / f"train{i}_{v}.mkv", rng)
             for i, (name, start, dur) in enumerate(TRAIN_CLIPS) for v in range(2)]
    test = [burst_sample(media_dir / name, start, dur, out / f"test{i}.mkv", rng)
            for i, (name, start, dur) in enumerate(TEST_CLIPS)]
    return train, test


def test_event_layout_and_labels_on_the_one_second_grid(burst_sets):
    train, test = burst_sets
    for sample in train + test:
        assert sample.features["logmel"].shape == (sample.n_steps, 128)
        assert 0 < sample.labels.sum() < sample.n_steps // BLOCK_STEPS
        assert not set(np.flatnonzero(sample.labels) // BLOCK_STEPS) & set(sample.meta["tones"] // BLOCK_STEPS)


@pytest.mark.slow
def test_dynamics_only_davihd_learns_the_bursts(burst_sets):
    """Trained vs untrained A_d-only DAViHD. The 4-s time pooling of the FDY CNN (spec §1.3 row 3)
    limits localisation to 4-s blocks, so AP is measured on blocks; see the module docstring."""
    train, test = burst_sets
    torch.manual_seed(0)
    untrained = create_method("davihd", {"logmel": 128}, {**DYNAMICS_ONLY, "epochs": 0})
    torch.manual_seed(0)
    trained = create_method("davihd", {"logmel": 128}, {**DYNAMICS_ONLY, "epochs": 30, "lr": 1e-3})
    report = trained.fit(train, seed=0)
    numbers = {"train_block_ap": (block_ap(trained, train), block_ap(untrained, train)),
               "test_block_ap": (block_ap(trained, test), block_ap(untrained, test)),
               "test_step_ap": (step_ap(trained, test), step_ap(untrained, test))}
    print(numbers)
    assert min(report["train_loss"][-5:]) < report["train_loss"][0]
    assert numbers["train_block_ap"][0] > numbers["train_block_ap"][1] + 0.1, numbers
