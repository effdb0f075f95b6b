"""Pseudo-label quality ablation for the recurrence method (issue #14), numpy only, no network.

For every variant of the pseudo-highlight scores (A-PH / V-PH / AV-PH, cosine / Pearson, with or
without the video's own clips in its category mean, pseudo / real / single category, UMAP or not)
and for label-free priors (visual / audio feature norm) and their combinations, it reports against
the ground truth (read only here, to measure):
* YouTube Highlights, per domain: AP (the benchmark metric) and Spearman rho of the scores on the
  *training* videos (what the network is trained to imitate), and the test mAP of the scores used
  directly (category means from the training videos; for the priors, the prior itself).
* TVSum, all 50 videos: UMT top-5 mAP and rho of the scores.

Usage: python3 bench/unsupervised_ablation.py --data-root ../shared/data --out bench/results/unsupervised
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from scipy.stats import rankdata, spearmanr

from avhighlights.core.sample import Sample
from avhighlights.evaluation.highlight_metrics import tvsum_top5_map_umt, youtube_map
from avhighlights.evaluation.tvsum_data import TVSumDataset
from avhighlights.evaluation.youtube_data import YouTubeHighlightsDataset
from avhighlights.models.pseudo_labels import normaliser, pseudo_categories, video_descriptor
from avhighlights.models.recurrence_prior import combined_scores, motion_prior

ScoreFn = Callable[[Sequence[Sample], Sequence[Sample]], tuple[list[np.ndarray], list[np.ndarray]]]


def kmeans_no_umap(descriptors: np.ndarray, seed: int) -> np.ndarray:
    from avhighlights.models.pseudo_labels import best_kmeans, unit_rows

    return best_kmeans(unit_rows(descriptors), seed)[0]


CATEGORY_CACHE: dict[tuple, np.ndarray] = {}


def categories_for(train: Sequence[Sample], how: str, seed: int = 0) -> np.ndarray:
    key = (tuple(s.video_id for s in train), how, seed)
    if key not in CATEGORY_CACHE:
        CATEGORY_CACHE[key] = compute_categories(train, how, seed)
    return CATEGORY_CACHE[key]


def compute_categories(train: Sequence[Sample], how: str, seed: int) -> np.ndarray:
    descriptors = np.stack([video_descriptor(s.features["visual"], s.features["audio"]) for s in train])
    if how == "pseudo":
        return pseudo_categories(descriptors, seed)[0]
    if how == "kmeans_no_umap":
        return kmeans_no_umap(descriptors, seed)
    if how == "real":
        groups = sorted({str(s.group) for s in train})
        return np.array([groups.index(str(s.group)) for s in train])
    return np.zeros(len(train), dtype=np.int64)  # "one": a single category


def recurrence_variant(modes: str, similarity: str, cats: str, own_clips: bool, sign: float = 1.0) -> ScoreFn:
    """Pseudo-scores on the training videos and direct scores on the test videos for one variant."""
    norm = normaliser(similarity)

    def score(train: Sequence[Sample], test: Sequence[Sample]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        categories = categories_for(train, cats)
        out_train = [np.zeros(s.n_steps) for s in train]
        sums = {}
        for role, key in (("visual", "v"), ("audio", "a")):
            if key not in modes:
                continue
            units = [norm(s.features[role]) for s in train]
            for c in np.unique(categories):
                members = np.flatnonzero(categories == c)
                total, count = sum(units[i].sum(axis=0) for i in members), sum(len(units[i]) for i in members)
                sums[(role, int(c))] = total / count
                for i in members:
                    rest = (total - units[i].sum(axis=0)) / max(count - len(units[i]), 1)
                    mean = total / count if own_clips else rest
                    out_train[i] = out_train[i] + sign * units[i] @ mean
        centroids = category_centroids(train, categories)
        out_test = []
        for s in test:
            c = int(np.argmax(centroids @ unit(video_descriptor(s.features["visual"], s.features["audio"]))))
            row = np.zeros(s.n_steps)
            for role, key in (("visual", "v"), ("audio", "a")):
                if key in modes:
                    row = row + sign * norm(s.features[role]) @ sums[(role, c)]
            out_test.append(row)
        return out_train, out_test

    return score


def unit(x: np.ndarray) -> np.ndarray:
    return x / max(float(np.linalg.norm(x)), 1e-12)


def category_centroids(train: Sequence[Sample], categories: np.ndarray) -> np.ndarray:
    desc = np.stack([unit(video_descriptor(s.features["visual"], s.features["audio"])) for s in train])
    return np.stack([desc[categories == c].mean(axis=0) for c in sorted(np.unique(categories))])


def prior_variant(role: str, sign: float = 1.0) -> ScoreFn:
    def score(train: Sequence[Sample], test: Sequence[Sample]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        def f(s):
            return sign * np.linalg.norm(np.asarray(s.features[role], np.float64), axis=1)
        return [f(s) for s in train], [f(s) for s in test]
    return score


def combo_variant(weight: float, modes: str = "av") -> ScoreFn:
    """Our recipe's pseudo-scores: rank-normalised motion prior + `weight` x rank-normalised recurrence."""
    base = recurrence_variant(modes, "cosine", "pseudo", True)

    def score(train: Sequence[Sample], test: Sequence[Sample]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        rec_train, rec_test = base(train, test)
        def fuse(samples, rec):
            return [combined_scores(motion_prior(s.features["visual"]), r, weight)
                    for s, r in zip(samples, rec, strict=True)]
        return fuse(train, rec_train), fuse(test, rec_test)
    return score


def variants() -> dict[str, ScoreFn]:
    out: dict[str, ScoreFn] = {}
    for modes in ("av", "v", "a"):
        for sim in ("cosine", "pearson"):
            out[f"rec_{modes}_{sim}_pseudo_own"] = recurrence_variant(modes, sim, "pseudo", True)
    for cats in ("real", "one", "kmeans_no_umap"):
        out[f"rec_av_cosine_{cats}_own"] = recurrence_variant("av", "cosine", cats, True)
    out["rec_av_cosine_pseudo_noown"] = recurrence_variant("av", "cosine", "pseudo", False)
    out["rec_av_cosine_pseudo_own_negated"] = recurrence_variant("av", "cosine", "pseudo", True, -1.0)
    out["prior_visual_norm"] = prior_variant("visual")
    out["prior_audio_norm"] = prior_variant("audio")
    out["prior_flow_norm"] = lambda tr, te: ([motion_prior(s.features["visual"][:, 1024:]) for s in tr],
                                             [motion_prior(s.features["visual"][:, 1024:]) for s in te])
    out["prior_rgb_norm"] = lambda tr, te: ([motion_prior(s.features["visual"][:, :1024]) for s in tr],
                                            [motion_prior(s.features["visual"][:, :1024]) for s in te])
    for w in (0.25, 0.5, 1.0):
        out[f"ours_motion+{w:g}*rec_av"] = combo_variant(w)
    return out


def mean_rho(preds: Sequence[np.ndarray], truths: Sequence[np.ndarray]) -> float:
    rows = [spearmanr(p, t).statistic for p, t in zip(preds, truths, strict=True) if np.ptp(t) > 0 and np.ptp(p) > 0]
    return float(np.mean(rows)) if rows else float("nan")


def youtube_table(root: str) -> dict[str, dict[str, dict[str, float]]]:
    ds = YouTubeHighlightsDataset.from_data_root(root)
    table: dict[str, dict[str, dict[str, float]]] = {}
    for split in ds.splits():
        train, test = ds.samples(split.train_ids), ds.samples(split.test_ids)
        for name, fn in variants().items():
            tr, te = fn(train, test)
            table.setdefault(name, {})[split.name] = {
                "train_ap": youtube_map(tr, [s.meta["match"] for s in train]),
                "train_rho": mean_rho(tr, [s.meta["match"] for s in train]),
                "test_map_direct": youtube_map(te, [s.meta["match"] for s in test])}
    return table


def tvsum_table(root: str) -> dict[str, dict[str, float]]:
    ds = TVSumDataset.from_data_root(root)
    videos = ds.samples(ds.video_ids())
    table = {}
    for name, fn in variants().items():
        scores, _ = fn(videos, [])
        table[name] = {"top5_map_umt": float(np.mean([tvsum_top5_map_umt(p, s.meta["annotations"])
                                                      for s, p in zip(videos, scores, strict=True)])),
                       "rho": mean_rho(scores, [s.labels for s in videos])}
    return table


def markdown(yt: dict, tv: dict) -> str:
    domains = sorted(next(iter(yt.values())))
    head = "| variant | " + " | ".join(f"{d} AP / rho (train) | {d} test direct" for d in domains)
    lines = [head + " | YT mean train AP | YT mean test direct | TVSum top-5 (50 videos) | TVSum rho |",
             "|---" * (2 * len(domains) + 5) + "|"]
    for name, per in yt.items():
        cells = [f"{100 * per[d]['train_ap']:.2f} / {per[d]['train_rho']:+.3f} | {100 * per[d]['test_map_direct']:.2f}"
                 for d in domains]
        mean_tr = 100 * np.mean([per[d]["train_ap"] for d in domains])
        mean_te = 100 * np.mean([per[d]["test_map_direct"] for d in domains])
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {mean_tr:.2f} | {mean_te:.2f} | "
                     f"{100 * tv[name]['top5_map_umt']:.2f} | {tv[name]['rho']:+.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    yt, tv = youtube_table(args.data_root), tvsum_table(args.data_root)
    (out / "pseudo_label_quality.json").write_text(json.dumps({"youtube": yt, "tvsum": tv}, indent=1))
    (out / "pseudo_label_quality.md").write_text(markdown(yt, tv))
    print(markdown(yt, tv))


if __name__ == "__main__":
    _ = rankdata  # noqa: F841  (scipy is needed by combined_scores)
    main()
