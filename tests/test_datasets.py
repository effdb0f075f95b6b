"""Dataset loaders: the shared TVSum / YouTube data (skipped without it), a generated Mr.HiSum h5,
QVHighlights annotations, a labelled folder, splits and typed errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from avhighlights.core.errors import DatasetError
from avhighlights.core.timebase import FeatureTrack, Spans, second_grid
from avhighlights.evaluation.datasets import DATASETS, load_umt_features
from avhighlights.evaluation.folder_data import FolderDataset, span_labels
from avhighlights.evaluation.mrhisum_data import MrHiSumDataset
from avhighlights.evaluation.qvhighlights_data import load_qvhighlights
from avhighlights.evaluation.tvsum_data import (
    TVSumDataset,
    kfold_splits,
    length_to_seconds,
    tvsum_1fps_ground_truth,
)
from avhighlights.evaluation.youtube_data import YouTubeHighlightsDataset


def test_missing_root_raises_dataset_error_naming_it(tmp_path: Path):
    with pytest.raises(DatasetError, match="nowhere"):
        TVSumDataset(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="tvsum_anno.json: file not found"):
        TVSumDataset(tmp_path)


def test_umt_features_concatenate_rgb_flow_and_trim_to_shortest(tmp_path: Path):
    path = tmp_path / "v.npz"
    np.savez(path, rgb=np.ones((4, 3), np.float16), flow=np.zeros((4, 3), np.float16),
             audio=np.full((5, 2), 2, np.float16))
    feats = load_umt_features(path)
    assert feats["visual"].shape == (4, 6) and feats["audio"].shape == (4, 2)
    assert feats["visual"].dtype == np.float32 and feats["visual"][0].tolist() == [1, 1, 1, 0, 0, 0]
    np.savez(tmp_path / "bad.npz", rgb=np.ones((2, 2)))
    with pytest.raises(DatasetError, match="bad.npz"):
        load_umt_features(tmp_path / "bad.npz")


def test_kfold_is_reproducible_and_partitions_sorted_ids():
    ids = [f"v{i:02d}" for i in range(50)][::-1]
    first, again, other = kfold_splits(ids, 42), kfold_splits(ids, 42), kfold_splits(ids, 123)
    assert [s.test_ids for s in first] == [s.test_ids for s in again]
    assert [s.test_ids for s in first] != [s.test_ids for s in other]
    assert sorted(v for s in first for v in s.test_ids) == sorted(ids)
    assert all(s.val_ids == s.test_ids and not set(s.train_ids) & set(s.test_ids) for s in first)
    assert [len(s.test_ids) for s in first] == [10] * 5


def test_tvsum_1fps_ground_truth_interpolates_frame_means():
    frames = np.array([[1, 1], [5, 5], [3, 3]])  # means 1, 5, 3 -> 0, 1, 0.5 at positions 0, 1.5, 3
    gt = tvsum_1fps_ground_truth(frames, 4)
    np.testing.assert_allclose(gt, [0.0, 2 / 3, 1 - 0.5 / 3, 0.5])
    assert length_to_seconds("2:13") == 133 and length_to_seconds("1:00:01") == 3601


def test_shared_tvsum(data_root: Path):
    ds = DATASETS.get("tvsum").from_data_root(data_root)
    assert len(ds) == 50
    sample = ds.sample("kLxoNp-UchI")  # 64 rgb/flow rows, 65 audio rows, 64 annotated clips
    assert sample.features["visual"].shape == (64, 2048) and sample.features["audio"].shape == (64, 2048)
    assert sample.meta["annotations"].shape == (64, 20) and sample.step_s == 2.0
    assert sample.labels.min() >= 0 and sample.labels.max() <= 1
    np.testing.assert_allclose(sample.labels, (sample.meta["annotations"].mean(1) - 1) / 4, atol=1e-6)
    assert sample.meta["frame_annotations"].shape == (3896, 20)
    splits = ds.splits()
    assert len(splits) == 10 and all(len(s.train_ids) == 4 and len(s.test_ids) == 1 for s in splits)
    assert {s.group for s in splits} == {ds.anno[s.test_ids[0]]["domain"] for s in splits}


def test_shared_youtube_counts_match_the_readme(data_root: Path):
    ds = YouTubeHighlightsDataset.from_data_root(data_root)
    counts = {s.name: (len(s.train_ids), len(s.test_ids)) for s in ds.splits()}
    assert counts == {"dog": (40, 17), "gymnastics": (33, 26), "parkour": (19, 11), "skating": (22, 10)}
    sample = ds.sample(ds.splits()[0].test_ids[0])
    fps = sample.meta["fps"]
    assert sample.step_s == pytest.approx(50 / fps)
    assert sample.meta["end_s"][0] - sample.meta["start_s"][0] == pytest.approx(100 / fps)
    np.testing.assert_array_equal(sample.labels, sample.meta["match"] > 0)
    only_dog = YouTubeHighlightsDataset.from_data_root(data_root, groups=["dog"])
    assert [s.name for s in only_dog.splits()] == ["dog"]
    assert all(v not in set(only_dog.video_ids()) for v in only_dog.unavailable_ids()["dog"])


def _write_mrhisum(root: Path, lengths: dict[str, int]) -> None:
    """A small h5 with the official structure, plus metadata.csv and the split json."""
    import h5py

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    with h5py.File(root / "mr_hisum.h5", "w") as h5:
        for vid, n in lengths.items():
            group = h5.create_group(vid)
            group["features"] = rng.normal(size=(n, 1024)).astype(np.float32)
            group["gtscore"] = rng.random(n).astype(np.float32)
            group["change_points"] = np.array([[0, n // 2 - 1], [n // 2, n - 1]])
            group["gt_summary"] = (np.arange(n) < n // 5).astype(np.float32)
    rows = ["video_id,yt8m_file,random_id,youtube_id,duration,views,labels"]
    rows += [f"{vid},train0000,AAAA,yt_{vid},{n},1,[1]" for vid, n in lengths.items()]
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    split = {"train_keys": ["video_1", "video_9"], "val_keys": ["video_2"], "test_keys": ["video_3"]}
    (root / "mr_hisum_split.json").write_text(json.dumps(split))


def test_mrhisum_loader_on_a_generated_h5(tmp_path: Path):
    _write_mrhisum(tmp_path / "mrhisum", {"video_1": 30, "video_2": 12, "video_3": 21})
    ds = DATASETS.get("mrhisum").from_data_root(tmp_path)
    assert ds.video_ids() == ["video_1", "video_2", "video_3"]
    sample = ds.sample("video_3")
    assert sample.features["visual"].shape == (21, 1024) and sample.step_s == 1.0
    assert sample.meta["change_points"].tolist() == [[0, 9], [10, 20]] and sample.meta["youtube_id"] == "yt_video_3"
    split = ds.splits()[0]
    assert (split.train_ids, split.val_ids, split.test_ids) == (("video_1",), ("video_2",), ("video_3",))


def test_mrhisum_without_h5_names_the_file(tmp_path: Path):
    _write_mrhisum(tmp_path, {"video_1": 10})
    (tmp_path / "mr_hisum.h5").unlink()
    with pytest.raises(DatasetError, match="mr_hisum.h5: file not found"):
        MrHiSumDataset(tmp_path)


def test_qvhighlights_loader(tmp_path: Path, data_root: Path):
    records = load_qvhighlights(data_root / "qvhighlights", "val")
    assert records and all(len(r["relevant_clip_ids"]) == len(r["saliency_scores"]) for r in records)
    (tmp_path / "highlight_test_release.jsonl").write_text(json.dumps({"qid": 1, "vid": "x", "duration": 4}) + "\n")
    with pytest.raises(DatasetError, match="lacks"):
        load_qvhighlights(tmp_path, "test")


def test_span_labels_cover_fractions_of_seconds():
    grid = second_grid(4.0)
    np.testing.assert_allclose(span_labels(np.array([[0.5, 2.0]]), grid), [0.5, 1.0, 0.0, 0.0])


def _features_for(video: Path) -> dict[str, FeatureTrack]:
    """Features a caller would inject: 0.5-s rows of the video's (fake) length, from its name."""
    n = 2 * int(video.stem.split("_")[1])
    values = np.arange(n, dtype=np.float32)[:, None].repeat(2, axis=1)
    return {"visual": FeatureTrack(values, Spans.regular(n, 0.5), "demo")}


def test_folder_dataset_aligns_features_and_reads_labels(tmp_path: Path):
    for name in ("a_4.mp4", "b_3.mkv", "c_2.mp4"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "a_4.labels.json").write_text(json.dumps({"scores": [0, 1, 0.5, 0.25], "group": "demo"}))
    (tmp_path / "b_3.labels.csv").write_text("start_s,end_s\n1.0,2.5\n")
    ds = FolderDataset(tmp_path, _features_for)
    assert ds.video_ids() == ["a_4", "b_3"]  # c_2 has no label file
    a, b = ds.sample("a_4"), ds.sample("b_3")
    np.testing.assert_allclose(a.features["visual"][:, 0], [0.5, 2.5, 4.5, 6.5])  # means of 0.5-s rows
    assert a.labels.tolist() == [0, 1, 0.5, 0.25] and a.group == "demo"
    np.testing.assert_allclose(b.labels, [0.0, 1.0, 0.5])
    assert ds.splits()[0].test_ids == ("a_4", "b_3") and ds.splits()[0].train_ids == ()
    (tmp_path / "splits.json").write_text(json.dumps({"train": ["a_4"], "test": ["b_3"]}))
    assert ds.splits()[0].train_ids == ("a_4",)
    (tmp_path / "splits.json").write_text(json.dumps({"train": ["zz"]}))
    with pytest.raises(DatasetError, match="unknown videos"):
        ds.splits()
