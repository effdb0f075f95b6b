"""Feature store: keys, round trips, corruption recovery, concurrency, fsspec and S3 backends,
and cached extraction that never decodes the video on a hit."""

from __future__ import annotations

import multiprocessing as mp
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from avhighlights.core.errors import FeatureStoreError
from avhighlights.core.timebase import FeatureTrack, Spans
from avhighlights.extractors.base import EXTRACTORS, Extractor, create_extractor
from avhighlights.extractors.store import FeatureStore, entry_key
from avhighlights.pipeline.extract import ExtractionStats, extract_features
from avhighlights.pipeline.probe import probe


@dataclass(frozen=True)
class _MeanConfig:
    scale: float = 1.0
    sleep_s: float = 0.0


@EXTRACTORS.register("test_audio_mean")
class _AudioMeanExtractor(Extractor):
    """A real, tiny extractor: per-second mean absolute audio amplitude (for store tests)."""

    version = "1"
    modality = "audio"
    Config = _MeanConfig

    @property
    def dim(self) -> int:
        return 1

    @property
    def hop_s(self) -> float:
        return 1.0

    def extract(self, media) -> FeatureTrack:
        time.sleep(self.config.sleep_s)
        samples = np.concatenate([c.samples for c in media.audio_chunks(8000)])
        n = len(samples) // 8000
        rows = np.abs(samples[: n * 8000]).reshape(n, 8000).mean(axis=1, keepdims=True) * self.config.scale
        return FeatureTrack.regular(rows, 1.0, name=self.name)


def _track(n: int = 5) -> FeatureTrack:
    return FeatureTrack.regular(np.arange(n * 2, dtype=np.float32).reshape(n, 2), 1.0)


def test_key_covers_every_part_of_the_identity():
    ex = create_extractor("test_audio_mean")
    base = entry_key("abc", ex.identity())
    assert entry_key("abd", ex.identity()) != base
    assert entry_key("abc", create_extractor("test_audio_mean", {"scale": 2.0}).identity()) != base
    for part, value in (("extractor", "other"), ("version", "2"), ("weights_sha256", "ff")):
        assert entry_key("abc", {**ex.identity(), part: value}) != base


def test_round_trip_keeps_irregular_spans(tmp_path: Path):
    store = FeatureStore(tmp_path)
    spans = Spans(np.array([0.0, 0.5, 3.0]), np.array([1.0, 2.0, 4.0]))
    track = FeatureTrack(np.ones((3, 4), np.float32), spans)
    store.put("k" * 64, track, {"extractor": "x"}, "v")
    back = store.get("k" * 64)
    np.testing.assert_array_equal(back.values, track.values)
    np.testing.assert_array_equal(back.spans.end_s, spans.end_s)
    assert [e.key for e in store.entries()] == ["k" * 64]


@pytest.mark.parametrize("damage", ["flip_byte", "truncate", "manifest_shape", "delete_array"])
def test_corrupt_entries_are_detected_and_recomputed(tmp_path: Path, damage: str):
    store = FeatureStore(tmp_path)
    ex = create_extractor("test_audio_mean")
    store.get_or_compute("vid", ex, _track)
    folder = tmp_path / store.key_for("vid", ex)[:2] / store.key_for("vid", ex)
    array = folder / "features.npy"
    if damage == "flip_byte":
        data = bytearray(array.read_bytes())
        data[-1] ^= 0xFF
        array.write_bytes(bytes(data))
    elif damage == "truncate":
        array.write_bytes(array.read_bytes()[:40])
    elif damage == "manifest_shape":
        text = (folder / "manifest.json").read_text().replace('"dim": 2', '"dim": 3')
        (folder / "manifest.json").write_text(text)
    else:
        array.unlink()
    with pytest.raises(FeatureStoreError, match="corrupt|unreadable"):
        store.get(store.key_for("vid", ex))
    assert len(store.verify().corrupt) == 1
    calls = []
    track, hit = store.get_or_compute("vid", ex, lambda: calls.append(1) or _track())
    assert not hit and calls == [1] and store.verify().corrupt == []


def _compute_in_process(root: str, queue) -> None:
    store = FeatureStore(root)
    ex = create_extractor("test_audio_mean")

    def slow() -> FeatureTrack:
        time.sleep(1.0)
        return _track(7)

    track, hit = store.get_or_compute("same-video", ex, slow)
    queue.put((hit, track.values.tolist()))


def test_two_processes_computing_one_key_leave_one_intact_entry(tmp_path: Path):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_compute_in_process, args=(str(tmp_path), queue)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert sorted(hit for hit, _ in results) == [False, True]
    assert results[0][1] == results[1][1]
    store = FeatureStore(tmp_path)
    assert len(list(store.keys())) == 1 and store.verify().corrupt == []
    assert not [p for p in tmp_path.rglob("*") if ".tmp-" in p.name or ".old-" in p.name]


def test_fsspec_memory_backend_round_trip():
    store = FeatureStore("memory://avh-test-store")
    ex = create_extractor("test_audio_mean")
    _, hit1 = store.get_or_compute("v1", ex, _track)
    back, hit2 = store.get_or_compute("v1", ex, lambda: pytest.fail("must be cached"))
    assert (hit1, hit2) == (False, True) and back.values.shape == (5, 2)


def test_prune_by_extractor_and_dry_run(tmp_path: Path):
    store = FeatureStore(tmp_path)
    store.put("a" * 64, _track(), {"extractor": "x"}, "v")
    store.put("b" * 64, _track(), {"extractor": "y"}, "v")
    assert store.prune(extractor="x", dry_run=True) == ["a" * 64] and len(list(store.keys())) == 2
    assert store.prune(extractor="x") == ["a" * 64] and list(store.keys()) == ["b" * 64]
    assert store.prune(older_than_s=3600) == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_s3_compatible_endpoint_on_loopback(monkeypatch):
    pytest.importorskip("s3fs")
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        for var, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                           ("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")):
            monkeypatch.setenv(var, value)
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
        fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": f"http://127.0.0.1:{port}"})
        fs.mkdir("avh-features")
        store = FeatureStore("s3://avh-features/store")
        ex = create_extractor("test_audio_mean")
        store.get_or_compute("v", ex, _track)
        back, hit = store.get_or_compute("v", ex, lambda: pytest.fail("must be cached"))
        assert hit and back.values.shape == (5, 2) and store.verify().corrupt == []
    finally:
        server.stop()


def test_second_extraction_is_served_from_the_store_without_decoding(synthetic_video: Path, tmp_path: Path):
    info = probe(synthetic_video)
    store = FeatureStore(tmp_path)
    ex = [create_extractor("test_audio_mean"), create_extractor("loudness")]
    opened = []

    def factory(video_info):
        from avhighlights.pipeline.media import open_media

        opened.append(video_info.path)
        return open_media(video_info)

    first, second = ExtractionStats(), ExtractionStats()
    tracks1 = extract_features(info, ex, store, media_factory=factory, stats=first)
    assert first.misses == ["test_audio_mean", "loudness"] and len(opened) == 2
    tracks2 = extract_features(info, ex, store, media_factory=factory, stats=second)
    assert second.hits == ["test_audio_mean", "loudness"] and len(opened) == 2
    for name in tracks1:
        np.testing.assert_array_equal(tracks1[name].values, tracks2[name].values)


def test_loudness_rows_cover_their_own_second(synthetic_video: Path):
    from avhighlights.pipeline.media import open_media

    info = probe(synthetic_video)
    track = create_extractor("loudness").extract(open_media(info))
    assert track.values.shape == (20, 3)
    rms = track.values[:, 0]
    loud = {3, 4, 11, 12, 16, 17}  # bursts at 3.0-4.5, 11.0-12.5, 16.0-17.5 s
    quiet = [i for i in range(20) if i not in loud]
    assert rms[sorted(loud)].min() > rms[quiet].max() + 10.0  # dB


def test_store_cli_lists_verifies_and_prunes(tmp_path: Path, capsys):
    from avhighlights.cli.main import main

    store = FeatureStore(tmp_path)
    store.put("c" * 64, _track(), {"extractor": "x", "version": "1"}, "v" * 64)
    assert main(["store", "list", "--store", str(tmp_path)]) == 0
    assert "cccccccccccccccc" in capsys.readouterr().out
    (tmp_path / "cc" / ("c" * 64) / "features.npy").write_bytes(b"junk")
    assert main(["store", "verify", "--store", str(tmp_path)]) == 6
    assert main(["store", "verify", "--store", str(tmp_path), "--remove-corrupt"]) == 0
    assert list(store.keys()) == []
