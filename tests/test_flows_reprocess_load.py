"""reprocess-dataset under load (#16 "Also"): 50 tiny videos (slow; 10 in the default run) scored concurrently on
the thread task runner into one output tree with one shared feature store. Every result must be intact and
every feature computed once, counted by a registered test extractor that appends one line per real computation
to a log file (a count that does not trust the code under test); duplicate contents (byte-identical copies in
another folder) must wait for the store's per-key lock and hit. A second pass into a new tree computes nothing
(all hits), a third into the first tree skips every video."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("prefect")

from avhighlights.extractors import EXTRACTORS  # noqa: E402
from avhighlights.extractors.loudness import LoudnessExtractor  # noqa: E402
from avhighlights.extractors.store import FeatureStore  # noqa: E402
from avhighlights.pipeline.probe import content_sha256, probe  # noqa: E402
from avhighlights.pipeline.results import read_results  # noqa: E402

COUNT_LOG_ENV = "AVH_TEST_EXTRACT_LOG"
COUNTING = "test_counting_loudness"


@EXTRACTORS.register(COUNTING)
class CountingLoudness(LoudnessExtractor):
    """The loudness extractor, plus one line `<video sha256>` appended to $AVH_TEST_EXTRACT_LOG per computation
    (O_APPEND writes of one short line are atomic across threads and processes)."""

    def extract(self, media):
        fd = os.open(os.environ[COUNT_LOG_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{media.info.sha256}\n".encode())
        finally:
            os.close(fd)
        return super().extract(media)


def make_dataset(root: Path, n_distinct: int, n_copies: int) -> Path:
    """`n_distinct` 1.5-s 64x48 videos (one ffmpeg encode, remuxed with a distinct tag each) in two folders, plus
    byte-identical copies of the first `n_copies` under dup/ (same stems, same content, another folder)."""
    base = root.parent / "base.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1.5",
                    "-f", "lavfi", "-i", "sine=frequency=440:duration=1.5:sample_rate=16000", "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(base)], check=True)
    for i in range(n_distinct):
        target = root / ("a" if i % 2 else "b") / f"v{i:02d}.mp4"
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(base), "-map", "0", "-c", "copy",
                        "-metadata", f"comment=load-{i}", str(target)], check=True)
    (root / "dup").mkdir()
    for i in range(n_copies):
        shutil.copyfile(root / ("a" if i % 2 else "b") / f"v{i:02d}.mp4", root / "dup" / f"v{i:02d}.mp4")
    return root


@pytest.fixture(scope="session")
def small_load(tmp_path_factory) -> tuple[Path, int, int]:
    return make_dataset(tmp_path_factory.mktemp("load10") / "dataset", 8, 2), 8, 2


@pytest.fixture(scope="session")
def full_load(tmp_path_factory) -> tuple[Path, int, int]:
    return make_dataset(tmp_path_factory.mktemp("load50") / "dataset", 40, 10), 40, 10


def _computations(log: Path) -> Counter:
    return Counter(log.read_text().split()) if log.exists() else Counter()


def _assert_intact(summary: dict, dataset: Path, out: Path, n_videos: int) -> None:
    assert summary["n_videos"] == n_videos and summary["failures"] == []
    for row in summary["videos"]:
        video = dataset / row["video"]
        doc = read_results(out / Path(row["video"]).parent / video.stem / "highlights.json")
        assert doc.video.sha256 == content_sha256(video) and Path(doc.video.path) == video
        assert len(doc.curve.scores) == 2 and doc.curve.method == "loudness"  # 1.5 s -> two 1-s segments


def _load(dataset: Path, n_distinct: int, n_copies: int, tmp_path: Path, monkeypatch) -> None:
    from avhighlights.flows.reprocess import reprocess_dataset

    n_videos, log, store = n_distinct + n_copies, tmp_path / "computations.log", str(tmp_path / "store")
    monkeypatch.setenv(COUNT_LOG_ENV, str(log))
    kwargs = {"config": {"store": store, "scorer": {"binding_overrides": {"loudness": COUNTING}},
                         "render": {"write_clips": False, "write_reel": False}}, "evaluate": False}
    first = reprocess_dataset(str(dataset), str(tmp_path / "out"), **kwargs)
    assert (first["done"], first["skipped"], first["failed"]) == (n_videos, 0, 0)
    _assert_intact(first, dataset, tmp_path / "out", n_videos)
    distinct = {content_sha256(p) for p in dataset.rglob("*.mp4")}
    computed = _computations(log)
    assert len(distinct) == n_distinct and set(computed) == distinct and set(computed.values()) == {1}
    assert sum(bool(r["computed_features"]) for r in first["videos"]) == n_distinct  # the copies were hits
    assert len({r["worker"] for r in first["videos"]}) == 1  # one process: threads shared the store lock
    feature_store = FeatureStore(store)
    assert len(list(feature_store.keys())) == n_distinct and feature_store.verify().corrupt == []

    second = reprocess_dataset(str(dataset), str(tmp_path / "out2"), **kwargs)
    assert second["done"] == n_videos and all(r["computed_features"] == "" for r in second["videos"])
    assert _computations(log) == computed  # zero new extractor computations: all store hits
    _assert_intact(second, dataset, tmp_path / "out2", n_videos)

    third = reprocess_dataset(str(dataset), str(tmp_path / "out"), **kwargs)
    assert third["skipped"] == n_videos and _computations(log) == computed


def test_ten_videos_concurrently_into_one_tree_and_one_store(prefect_server, small_load, tmp_path, monkeypatch):
    _load(*small_load, tmp_path, monkeypatch)


@pytest.mark.slow  # ~150 s on the shared 2-core CPU (3 passes x 50 videos)
def test_fifty_videos_concurrently_into_one_tree_and_one_store(prefect_server, full_load, tmp_path, monkeypatch):
    _load(*full_load, tmp_path, monkeypatch)


def test_a_few_videos_with_clips_and_reel_share_the_store(prefect_server, small_load, tmp_path, monkeypatch):
    """The writing part under concurrency: clips and reels of three videos (two of them identical content)."""
    from avhighlights.flows.reprocess import reprocess_dataset

    load_dataset, log = small_load[0], tmp_path / "computations.log"
    monkeypatch.setenv(COUNT_LOG_ENV, str(log))
    names = ["a/v01.mp4", "dup/v01.mp4", "b/v02.mp4"]
    manifest = tmp_path / "three.txt"
    manifest.write_text("".join(f"{load_dataset / n}\n" for n in names))
    out = tmp_path / "out"
    config = {"store": str(tmp_path / "store"), "scorer": {"binding_overrides": {"loudness": COUNTING}},
              "selection": {"top_ratio": 0.5, "min_clip_s": 1.0}, "render": {"stream_copy": True}}
    summary = reprocess_dataset(str(manifest), str(out), config, evaluate=False)
    assert summary["done"] == 3 and summary["failures"] == []
    assert sum(_computations(log).values()) == 2  # a/v01 and dup/v01 are one content
    for row in summary["videos"]:
        doc = read_results(row["results_json"])
        folder = Path(row["results_json"]).parent
        assert doc.clips and all(probe(folder / c.path).duration_s > 0 for c in doc.clips)
        assert probe(folder / "reel.mp4").duration_s > 0
