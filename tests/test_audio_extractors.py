"""Audio extractors: log-mel parity with torchaudio/librosa, streaming = one-shot, pooling and timing,
loudness, PANNs Cnn14 parameter names/shapes, EfficientAT architecture (random init)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from avhighlights.core.types import AudioChunk, VideoInfo
from avhighlights.extractors import EXTRACTORS, create_extractor
from avhighlights.extractors.logmel import (
    LOG_EPS,
    StreamingMelFrames,
    audio_blocks,
    htk_mel_filterbank,
)


@dataclass
class ArrayMedia:
    """A MediaSource over an in-memory mono signal (for synthetic signals with known timing)."""

    signal: np.ndarray
    sample_rate: int
    duration_s: float

    @property
    def info(self) -> VideoInfo:
        return VideoInfo(path=Path("synthetic.wav"), sha256="0" * 64, duration_s=self.duration_s, fps=Fraction(25),
                         variable_frame_rate=False, width=16, height=16, rotation_deg=0, video_codec="none",
                         has_audio=True)

    def audio_chunks(self, sample_rate: int, chunk_s: float = 60.0) -> Iterator[AudioChunk]:
        assert sample_rate == self.sample_rate, "tests build the signal at the extractor's rate"
        step = int(chunk_s * sample_rate)
        for start in range(0, self.signal.size, step):
            yield AudioChunk(start / sample_rate, sample_rate, self.signal[start: start + step].astype(np.float32))


def tone_burst(duration_s: float, sr: int, start_s: float, end_s: float, freq_hz: float = 1000.0,
               seed: int = 0) -> np.ndarray:
    """Quiet noise with a loud sine between start_s and end_s."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration_s * sr)) / sr
    signal = 1e-3 * rng.standard_normal(t.size)
    on = (t >= start_s) & (t < end_s)
    signal[on] += 0.5 * np.sin(2 * np.pi * freq_hz * t[on])
    return signal.astype(np.float32)


# ------------------------------------------------------------------------------------------------ logmel
def test_filterbank_matches_torchaudio():
    import torchaudio

    expected = torchaudio.functional.melscale_fbanks(1025, 0.0, 8000.0, 128, 16000, norm=None, mel_scale="htk")
    ours = htk_mel_filterbank(1025, 0.0, 8000.0, 128, 16000)
    torch.testing.assert_close(ours, expected, rtol=0, atol=5e-5)  # torchaudio computes in float32


def _one_shot_torchaudio(signal: np.ndarray) -> torch.Tensor:
    import torchaudio

    mel = torchaudio.transforms.MelSpectrogram(sample_rate=16000, n_fft=2048, win_length=2048, hop_length=256,
                                               f_min=0.0, f_max=8000.0, n_mels=128, power=2.0)
    return mel(torch.from_numpy(signal)).T  # (F, 128)


def _streamed(signal: np.ndarray, piece: int) -> torch.Tensor:
    stream = StreamingMelFrames(16000, 2048, 256, 128, 0.0, 8000.0)
    parts = [stream.push(signal[i: i + piece]) for i in range(0, signal.size, piece)]
    return torch.cat(parts + [stream.finish()])


@pytest.mark.parametrize("piece", [700, 4096, 16000, 10**6])
def test_streaming_stft_equals_one_shot_torchaudio(piece):
    signal = np.random.default_rng(1).standard_normal(16000 * 3 + 123).astype(np.float32) * 0.1
    expected = _one_shot_torchaudio(signal)
    got = _streamed(signal, piece)
    assert got.shape == expected.shape == (1 + signal.size // 256, 128)
    torch.testing.assert_close(torch.log(got + LOG_EPS), torch.log(expected + LOG_EPS), rtol=1e-4, atol=1e-3)


def test_mel_matches_librosa_htk():
    import librosa

    signal = np.random.default_rng(2).standard_normal(16000).astype(np.float32) * 0.1
    expected = librosa.feature.melspectrogram(y=signal, sr=16000, n_fft=2048, hop_length=256, n_mels=128, fmin=0.0,
                                              fmax=8000.0, htk=True, norm=None, power=2.0, pad_mode="reflect")
    got = _streamed(signal, 5000).numpy().T
    np.testing.assert_allclose(np.log(got + LOG_EPS), np.log(expected + LOG_EPS), rtol=1e-4, atol=1e-3)


def test_logmel_parity_pooling_hand_computed():
    signal = np.random.default_rng(3).standard_normal(16000 * 4).astype(np.float32) * 0.1
    media = ArrayMedia(signal, 16000, 4.0)
    track = create_extractor("logmel", {"chunk_s": 1.5}).extract(media)
    frames = torch.log(_one_shot_torchaudio(signal) + LOG_EPS).numpy()  # (251, 128)
    padded = np.zeros((250, 128), dtype=np.float32)  # floor(62.5 * 4) = 250 frames
    padded[:] = frames[:250]
    expected = padded[: 4 * 62].reshape(4, 62, 128).mean(axis=1)
    assert track.values.shape == (4, 128) and track.dim == 128
    np.testing.assert_allclose(track.values, expected, rtol=1e-4, atol=1e-3)


def test_logmel_exact_pooling_and_none():
    signal = np.random.default_rng(4).standard_normal(16000 * 3).astype(np.float32) * 0.1
    media = ArrayMedia(signal, 16000, 3.0)
    frames = torch.log(_one_shot_torchaudio(signal) + LOG_EPS).numpy()  # (188, 128), centre k*0.016 s
    exact = create_extractor("logmel", {"pooling": "exact"}).extract(media)
    seconds = np.floor(np.arange(frames.shape[0]) * 256 / 16000).astype(int)
    expected = np.stack([frames[seconds == t].mean(axis=0) for t in range(3)])
    np.testing.assert_allclose(exact.values, expected, rtol=1e-4, atol=1e-3)
    full = create_extractor("logmel", {"pooling": "none"})
    assert full.hop_s == pytest.approx(0.016)
    np.testing.assert_allclose(full.extract(media).values, frames, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("pooling", ["parity", "exact"])
def test_logmel_tone_burst_raises_rows_3_and_4_only(pooling):
    media = ArrayMedia(tone_burst(8.0, 16000, 3.0, 4.5), 16000, 8.0)
    energy = create_extractor("logmel", {"pooling": pooling}).extract(media).values.mean(axis=1)  # (8,)
    threshold = (energy.max() + np.median(energy)) / 2
    assert list(np.flatnonzero(energy > threshold)) == [3, 4]


def test_audio_blocks_pads_and_truncates():
    media = ArrayMedia(np.arange(25, dtype=np.float32), 10, 2.5)
    blocks = list(audio_blocks(media, 10, 10, 3, chunk_s=0.7))
    assert [b.tolist() for b in blocks] == [list(range(10)), list(range(10, 20)), [20, 21, 22, 23, 24] + [0] * 5]
    assert len(list(audio_blocks(media, 10, 10, 2))) == 2


# ------------------------------------------------------------------------------------------------ loudness
def test_loudness_tone_burst_and_silence_floor():
    media = ArrayMedia(tone_burst(6.0, 16000, 3.0, 4.5), 16000, 6.0)
    track = create_extractor("loudness").extract(media)
    assert track.values.shape == (6, 3)
    loud = track.values[:, 0] > -20.0
    assert list(np.flatnonzero(loud)) == [3, 4]
    # a 0.5-amplitude sine: rms = 0.5/sqrt(2) -> -9.03 dBFS; peak 0.5 -> -6.02 dBFS (plus tiny noise)
    assert track.values[3, 0] == pytest.approx(-9.03, abs=0.05)
    assert track.values[3, 1] == pytest.approx(-6.02, abs=0.1)
    silent = create_extractor("loudness").extract(ArrayMedia(np.zeros(32000, np.float32), 16000, 2.0))
    np.testing.assert_array_equal(silent.values, [[-100.0, -100.0, 0.0]] * 2)


def test_registered_audio_extractors():
    for name in ("logmel", "loudness"):
        extractor = create_extractor(name)
        assert extractor.modality == "audio" and name in EXTRACTORS


# ------------------------------------------------------------------------------------------------ PANNs Cnn14
def _official_cnn14_names(window: int, mels: int = 64) -> dict[str, tuple[int, ...]]:
    """Every (name, shape) of the official Cnn14 state dict, written out from the published architecture:
    torchlibrosa STFT conv kernels, the mel matrix, bn0, six ConvBlocks (64..2048 ch) and the two Linear layers."""
    bins = window // 2 + 1
    names = {"spectrogram_extractor.stft.conv_real.weight": (bins, 1, window),
             "spectrogram_extractor.stft.conv_imag.weight": (bins, 1, window),
             "logmel_extractor.melW": (bins, mels)}
    bn = lambda p, c: {f"{p}.{k}": (() if k == "num_batches_tracked" else (c,))  # noqa: E731
                       for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}
    names.update(bn("bn0", mels))
    for block, (c_in, c_out) in enumerate([(1, 64), (64, 128), (128, 256), (256, 512), (512, 1024), (1024, 2048)], 1):
        names[f"conv_block{block}.conv1.weight"] = (c_out, c_in, 3, 3)
        names[f"conv_block{block}.conv2.weight"] = (c_out, c_out, 3, 3)
        names.update(bn(f"conv_block{block}.bn1", c_out) | bn(f"conv_block{block}.bn2", c_out))
    return names | {"fc1.weight": (2048, 2048), "fc1.bias": (2048,), "fc_audioset.weight": (527, 2048),
                    "fc_audioset.bias": (527,)}


@pytest.mark.parametrize("name,window", [("panns_cnn14", 1024), ("panns_cnn14_16k", 512)])
def test_cnn14_state_dict_has_exactly_the_official_names(name, window):
    from avhighlights.extractors.panns_net import Cnn14, expected_cnn14_parameters

    spec = create_extractor(name, {"random_init": True}).net_spec()
    state = Cnn14(spec).state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == _official_cnn14_names(window)
    assert expected_cnn14_parameters(spec) == _official_cnn14_names(window)
    learnable = sum(v.numel() for k, v in state.items()
                    if "running" not in k and "num_batches" not in k and "extractor" not in k)
    assert learnable == 80_753_615  # PANNs paper, Table: Cnn14 80.8 M parameters


def test_cnn14_front_end_matches_torch_stft_and_librosa_mel():
    import librosa

    from avhighlights.extractors.panns_net import LogmelFilterBank, Spectrogram

    wave = torch.from_numpy(np.random.default_rng(5).standard_normal((2, 16000)).astype(np.float32))
    power = Spectrogram(512, 160)(wave)  # (B, 1, T, K)
    reference = torch.stft(wave, 512, 160, window=torch.hann_window(512), center=True, pad_mode="reflect",
                           return_complex=True).abs() ** 2  # (B, K, T)
    torch.testing.assert_close(power[:, 0], reference.transpose(1, 2), rtol=1e-3, atol=1e-2)
    mel = librosa.filters.mel(sr=16000, n_fft=512, n_mels=64, fmin=50.0, fmax=8000.0)
    np.testing.assert_allclose(LogmelFilterBank(16000, 512, 64, 50.0, 8000.0).melW.numpy(), mel.T, rtol=1e-6)


def test_panns_random_init_output_layout_and_identity():
    extractor = create_extractor("panns_cnn14_16k", {"random_init": True, "seed": 3, "batch_size": 2})
    track = extractor.extract(ArrayMedia(tone_burst(2.6, 16000, 1.0, 2.0), 16000, 2.6))
    assert track.values.shape == (3, 2048) and extractor.dim == 2048 and extractor.hop_s == 1.0
    assert np.isfinite(track.values).all() and (track.values >= 0).all()  # ReLU output
    assert extractor.weights_sha256() == "random-init:3"
    assert extractor.identity()["config"]["sample_rate"] == 16000


def test_panns_missing_weights_offline_error(monkeypatch, tmp_path):
    from avhighlights.core.errors import WeightsNotFoundError

    monkeypatch.setenv("AVH_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("AVH_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("AVH_OFFLINE", "1")
    extractor = create_extractor("panns_cnn14")
    with pytest.raises(WeightsNotFoundError, match="Cnn14_mAP=0.431.pth.*zenodo.org/record/3987831"):
        extractor.net  # noqa: B018 - building the network resolves the weights


# ------------------------------------------------------------------------------------------------ EfficientAT
def test_efficientat_random_init_layout():
    extractor = create_extractor("efficientat_mn04", {"random_init": True, "batch_size": 2})
    track = extractor.extract(ArrayMedia(tone_burst(3.0, 32000, 1.0, 2.0), 32000, 3.0))
    assert extractor.dim == 911 and track.values.shape == (3, 911)
    probabilities = track.values[:, 384:]
    assert ((probabilities > 0) & (probabilities < 1)).all()
    assert extractor.weights_sha256() == "random-init:0"


def test_efficientat_front_end_frames():
    from avhighlights.extractors.efficientat_net import EfficientATFrontEnd

    mel = EfficientATFrontEnd()(torch.zeros(2, 32000))  # (B, 128, T): 31999 samples after pre-emphasis
    assert mel.shape == (2, 128, 1 + 31999 // 320)
    torch.testing.assert_close(mel, torch.full_like(mel, (np.log(1e-5) + 4.5) / 5))  # silence -> log floor


# ------------------------------------------------------------------------------------------------ real decode
@pytest.mark.parametrize("name", ["logmel", "loudness"])
def test_synthetic_video_bursts_land_on_their_seconds(synthetic_video, name):
    """Bursts at 3, 11, 16 s lasting 1.5 s (AAC, decoded by the package's media layer) -> rows 3-4, 11-12, 16-17."""
    from avhighlights.pipeline.media import open_media
    from avhighlights.pipeline.probe import probe

    with open_media(probe(synthetic_video)) as media:
        track = create_extractor(name).extract(media)
    energy = track.values.mean(axis=1) if name == "logmel" else track.values[:, 0]  # (20,)
    assert len(track) == 20
    threshold = (energy.max() + np.median(energy)) / 2
    assert list(np.flatnonzero(energy > threshold)) == [3, 4, 11, 12, 16, 17]


def test_video_without_audio_track(silent_video):
    from avhighlights.pipeline.media import open_media
    from avhighlights.pipeline.probe import probe

    with open_media(probe(silent_video)) as media:
        loud = create_extractor("loudness").extract(media)
        mel = create_extractor("logmel", {"pooling": "exact"}).extract(media)
    np.testing.assert_array_equal(loud.values[:, :2], -100.0)
    np.testing.assert_allclose(mel.values, np.log(LOG_EPS), rtol=1e-5)


def test_runtime_only_fields_stay_out_of_the_cache_identity(synthetic_video):
    """logmel's streaming chunk length changes memory, not output: same rows, same identity."""
    from avhighlights.pipeline.media import open_media
    from avhighlights.pipeline.probe import probe

    small, large = create_extractor("logmel", {"chunk_s": 3.0}), create_extractor("logmel", {"chunk_s": 60.0})
    assert small.identity_hash() == large.identity_hash()
    assert create_extractor("logmel", {"n_mels": 64}).identity_hash() != large.identity_hash()
    media = open_media(probe(synthetic_video))
    np.testing.assert_allclose(small.extract(media).values, large.extract(media).values, rtol=1e-5, atol=1e-4)
