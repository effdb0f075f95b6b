"""Pseudo-highlights from audio-visual recurrence (Islam, Paul, Rochan; spec §2), without labels.

1. Video descriptor: [mean_i v_i ; mean_i a_i].
2. Pseudo-categories: UMAP to 10 dims (fixed random_state), K-means for K in
   {2, ..., min(30, floor(sqrt(M)))}, keep the K with the best silhouette. With fewer than
   `MIN_VIDEOS_TO_CLUSTER` (12) videos the range is empty or UMAP is unreliable, so every video
   gets the single pseudo-category 0 (documented fallback).
3. A-PH / V-PH of a clip: mean similarity to every clip of every video in its category,
   computed in O(S) as  x_hat_i . mean_k(x_hat_k)  with unit vectors x_hat (cosine), or with
   per-vector mean-centred unit vectors (Pearson correlation).
4. AV-PH = mean of the chosen modality scores; the top 50 % clips of each video -> 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from avhighlights.core.errors import ConfigError

MIN_VIDEOS_TO_CLUSTER = 12
MAX_CLUSTERS = 30
UMAP_DIMS = 10
EPS = 1e-12


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows of `x` (S, D) scaled to unit L2 norm (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), EPS)


def centred_unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows minus their own mean, then unit norm: dot products are Pearson correlations."""
    x = np.asarray(x, dtype=np.float64)
    return unit_rows(x - x.mean(axis=1, keepdims=True))


SIMILARITIES: dict[str, Callable[[np.ndarray], np.ndarray]] = {"cosine": unit_rows, "pearson": centred_unit_rows}


def normaliser(similarity: str) -> Callable[[np.ndarray], np.ndarray]:
    if similarity not in SIMILARITIES:
        raise ConfigError(f"recurrence: similarity must be one of {sorted(SIMILARITIES)}, got {similarity!r}")
    return SIMILARITIES[similarity]


def video_descriptor(visual: np.ndarray, audio: np.ndarray) -> np.ndarray:
    """[mean_i v_i ; mean_i a_i] of one video, (Dv + Da,)."""
    return np.concatenate([np.asarray(visual, np.float64).mean(axis=0), np.asarray(audio, np.float64).mean(axis=0)])


def cluster_range(n_videos: int) -> range:
    """Candidate K: 2 .. min(30, floor(sqrt(M))) (empty when M < 4)."""
    return range(2, min(MAX_CLUSTERS, int(np.floor(np.sqrt(n_videos)))) + 1)


def embed_umap(descriptors: np.ndarray, seed: int) -> np.ndarray:
    """UMAP to 10 dims with library defaults (15 neighbours, capped at M - 1) and a fixed seed."""
    import umap

    neighbours = min(15, len(descriptors) - 1)
    reducer = umap.UMAP(n_components=UMAP_DIMS, n_neighbors=neighbours, random_state=seed, n_jobs=1)
    return reducer.fit_transform(descriptors)


def best_kmeans(embedding: np.ndarray, seed: int) -> tuple[np.ndarray, int, float]:
    """K-means over `cluster_range`, keeping the best silhouette: (labels (M,), K, silhouette)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    best = (np.zeros(len(embedding), dtype=np.int64), 1, -1.0)
    for k in cluster_range(len(embedding)):
        labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(embedding)
        if len(np.unique(labels)) < 2:
            continue
        score = float(silhouette_score(embedding, labels))
        if score > best[2]:
            best = (labels.astype(np.int64), k, score)
    return best


def pseudo_categories(descriptors: np.ndarray, seed: int = 0) -> tuple[np.ndarray, dict[str, float]]:
    """Pseudo-category per video (M,) and a report {"k", "silhouette"}; see the module docstring
    for the fallback with fewer than 12 videos."""
    descriptors = np.asarray(descriptors, dtype=np.float64)
    if len(descriptors) < MIN_VIDEOS_TO_CLUSTER:
        return np.zeros(len(descriptors), dtype=np.int64), {"k": 1, "silhouette": float("nan"), "fallback": True}
    labels, k, score = best_kmeans(embed_umap(descriptors, seed), seed)
    return labels, {"k": k, "silhouette": score, "fallback": False}


def category_means(clips: Sequence[np.ndarray], categories: np.ndarray, norm: Callable) -> dict[int, np.ndarray]:
    """Per category, the mean of the normalised clip vectors of all its videos (D,)."""
    means = {}
    for cat in np.unique(categories):
        stacked = np.concatenate([norm(clips[i]) for i in np.flatnonzero(categories == cat)])  # (S, D)
        means[int(cat)] = stacked.mean(axis=0)
    return means


def recurrence_scores(clips: np.ndarray, category_mean: np.ndarray, norm: Callable) -> np.ndarray:
    """(1/S) sum_k sim(x_i, x_k) for every clip i of one video (T,), via the category mean."""
    return norm(clips) @ category_mean


def naive_recurrence_scores(clips: np.ndarray, category_clips: np.ndarray, norm: Callable) -> np.ndarray:
    """The quadratic reference: mean over the S category clips of the pairwise similarity (tests)."""
    return (norm(clips) @ norm(category_clips).T).mean(axis=1)


def top_fraction_binary(scores: np.ndarray, fraction: float = 0.5) -> np.ndarray:
    """1 on the top `fraction` of steps (k = max(1, round(fraction * T)); ties: earlier step), else 0."""
    k = max(1, int(round(fraction * len(scores))))
    binary = np.zeros(len(scores), dtype=np.float32)
    binary[np.argsort(-np.asarray(scores), kind="stable")[:k]] = 1.0
    return binary


def av_pseudo_scores(visual: Sequence[np.ndarray], audio: Sequence[np.ndarray], categories: np.ndarray,
                     ph_mode: str = "av", similarity: str = "cosine") -> list[np.ndarray]:
    """Per video the AV (or A-only / V-only) pseudo-highlight scores (T,), categories given."""
    norm = normaliser(similarity)
    parts = {"v": (visual, category_means(visual, categories, norm)),
             "a": (audio, category_means(audio, categories, norm))}
    if ph_mode not in ("av", "a", "v"):
        raise ConfigError(f"recurrence: ph_mode must be 'av', 'a' or 'v', got {ph_mode!r}")
    chosen = [parts[m] for m in ("v", "a") if m in ph_mode]
    return [np.mean([recurrence_scores(clips[i], means[int(categories[i])], norm) for clips, means in chosen], axis=0)
            for i in range(len(categories))]
