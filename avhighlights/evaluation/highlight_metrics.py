"""Clip-level highlight metrics: TVSum top-5 mAP (UMT and MINI-Net variants, spec §8.3),
YouTube Highlights mAP (§8.4) and QVHighlights HL-mAP / HIT@1 (§8.5). Fractions, not x100."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from avhighlights.evaluation.ap import (
    MetricInputError,
    ap_interp,
    ap_trap,
    ap_trap_ranked,
    as_pair,
    rank_descending,
    top_k_mask,
)

TOP_K = 5
QV_VERY_GOOD = 4  # QVHighlights "Very Good": saliency >= 4
QV_CLIP_S = 2.0


def lower_median(values) -> float:
    """torch's median: for even n the sorted element at index floor((n - 1) / 2), not the midpoint."""
    v = np.sort(np.asarray(values, dtype=np.float64).ravel())
    return float(v[(len(v) - 1) // 2])


def top5_ap(pred, positive) -> float:
    """Rank by `pred`, keep the top 5, AP-trap with G counted inside those 5 (0 if none)."""
    p, y = as_pair(pred, positive, "top5_ap")
    return ap_trap_ranked(y[rank_descending(p)[:TOP_K]])


def _annotation_matrix(pred, annotations, name: str) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64).ravel()
    a = np.asarray(annotations, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != len(p):
        raise MetricInputError(f"{name}: {len(p)} predictions but annotations of shape {a.shape}")
    return p, a


def tvsum_top5_map_umt(pred, annotations) -> float:
    """One video's UMT top-5 mAP: mean over annotators of top-5 AP-trap, a clip being positive
    when its score is strictly above that annotator's lower median. `annotations`: (clips, annotators)."""
    p, a = _annotation_matrix(pred, annotations, "tvsum_top5_map_umt")
    return float(np.mean([top5_ap(p, col > lower_median(col)) for col in a.T]))


def tvsum_dataset_map(per_video: Sequence[float]) -> float:
    """Mean over test videos of the per-video top-5 mAP, rounded to 5 decimals as UMT does."""
    return round(float(np.mean(per_video)), 5)


def constant_runs(values: np.ndarray, max_len: int) -> list[tuple[int, int]]:
    """[start, end) runs of equal values, each split into pieces of at most `max_len` items."""
    change = np.flatnonzero(np.diff(values) != 0) + 1
    bounds = np.r_[0, change, len(values)]
    shots = []
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        shots += [(s, min(s + max_len, end)) for s in range(int(start), int(end), max_len)]
    return shots


def _mininet_annotator_ap(frame_pred: np.ndarray, frame_scores: np.ndarray, max_len: int) -> float:
    shots = constant_runs(frame_scores, max_len)
    shot_gt = np.array([frame_scores[s:e].mean() for s, e in shots])
    shot_pred = np.array([frame_pred[s:e].mean() for s, e in shots])
    return top5_ap(shot_pred, top_k_mask(shot_gt, len(shots) // 2))


def tvsum_top5_map_mininet(frame_pred, frame_annotations, fps: float) -> float:
    """One video's MINI-Net top-5 mAP from per-frame predictions and (frames, annotators) scores.

    Per annotator, shots are runs of constant score split into sub-shots of at most
    floor(2 * fps) frames; the top floor(#shots / 2) shots by the annotator's score are positive
    (ties: earlier shot first); shots are ranked by their mean frame prediction.
    """
    p, a = _annotation_matrix(frame_pred, frame_annotations, "tvsum_top5_map_mininet")
    max_len = max(1, int(np.floor(2 * fps)))
    return float(np.mean([_mininet_annotator_ap(p, col, max_len) for col in a.T]))


def clip_to_frame_scores(clip_pred, n_frames: int, fps: float, clip_s: float = 2.0) -> np.ndarray:
    """Per-frame predictions: frame f takes the score of clip floor(f / (clip_s * fps)) (the last
    clip's score for frames past the final clip)."""
    clip_pred = np.asarray(clip_pred, dtype=np.float64).ravel()
    index = np.floor(np.arange(n_frames) / (clip_s * fps)).astype(np.int64)
    return clip_pred[np.minimum(index, len(clip_pred) - 1)]


def youtube_video_ap(pred, match) -> float:
    """YouTube Highlights AP for one video: AP-trap over all clips, positive when match > 0."""
    p, m = as_pair(pred, match, "youtube_video_ap")
    return ap_trap(p, m > 0)


def youtube_map(preds: Sequence, matches: Sequence) -> float:
    """Mean over videos of `youtube_video_ap` (a video without positives contributes 0)."""
    if len(preds) != len(matches) or not preds:
        raise MetricInputError(f"youtube_map: {len(preds)} predictions for {len(matches)} videos")
    return float(np.mean([youtube_video_ap(p, m) for p, m in zip(preds, matches, strict=True)]))


def qvhighlights_gt_scores(record: dict, clip_s: float = QV_CLIP_S) -> np.ndarray:
    """(floor(duration / 2), 3) saliency matrix: scores at `relevant_clip_ids`, 0 elsewhere."""
    scores = np.zeros((int(record["duration"] // clip_s), 3), dtype=np.float64)
    ids = np.asarray(record.get("relevant_clip_ids") or [], dtype=np.int64)
    if len(ids):
        scores[ids] = np.asarray(record["saliency_scores"], dtype=np.float64)
    return scores


def pad_or_truncate(pred, length: int) -> np.ndarray:
    """Zero-pad a shorter prediction, truncate a longer one."""
    p = np.asarray(pred, dtype=np.float64).ravel()[:length]
    return np.pad(p, (0, length - len(p)))


def qvhighlights_map_hit1(preds: dict, records: Sequence[dict],
                          threshold: int = QV_VERY_GOOD) -> dict[str, float]:
    """HL-mAP (AP-interp per (query, annotator), mean, x100, 2 decimals) and HIT@1 (arg-max clip is
    a hit when any annotator scored it >= threshold). `preds` maps qid -> per-clip scores."""
    aps, hits = [], []
    for record in records:
        gt = qvhighlights_gt_scores(record) >= threshold  # (clips, 3)
        if not len(gt):
            raise MetricInputError(f"qvhighlights: query {record['qid']} lasts {record['duration']} s, "
                                   f"shorter than one {QV_CLIP_S:g}-s clip")
        p = pad_or_truncate(preds[record["qid"]], len(gt))
        aps += [ap_interp(p, gt[:, w]) for w in range(gt.shape[1])]
        hits.append(float(gt[int(np.argmax(p))].any()))
    return {"hl_map": round(100 * float(np.mean(aps)), 2), "hit1": round(100 * float(np.mean(hits)), 2)}
