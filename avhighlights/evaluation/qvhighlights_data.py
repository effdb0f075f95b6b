"""QVHighlights highlight annotations (`highlight_{split}_release.jsonl`) for the HL-mAP / HIT@1
metric; the shared data has no QVHighlights features."""

from __future__ import annotations

from pathlib import Path

from avhighlights.core.errors import DatasetError
from avhighlights.evaluation.datasets import read_jsonl

QV_REQUIRED_KEYS = ("qid", "vid", "duration", "relevant_clip_ids", "saliency_scores")


def load_qvhighlights(root: str | Path, split: str = "val") -> list[dict]:
    """Records of one split with saliency labels (train or val; test has none)."""
    path = Path(root) / f"highlight_{split}_release.jsonl"
    records = read_jsonl(path)
    for number, record in enumerate(records, start=1):
        missing = [k for k in QV_REQUIRED_KEYS if k not in record]
        if missing:
            raise DatasetError(f"{path}: record {number} lacks {missing} (the test split has no labels)")
        if len(record["relevant_clip_ids"]) != len(record["saliency_scores"]):
            raise DatasetError(f"{path}: record {number} has {len(record['relevant_clip_ids'])} clip ids "
                               f"but {len(record['saliency_scores'])} saliency rows")
    return records
