"""TVSum random 80/20 protocol (Islam et al.: "random 80/20 split, 5 runs averaged"): per seed,
a seeded permutation of the 50 sorted ids gives 40 training and 10 test videos (not stratified by
category); one model over all training videos; UMT top-5 mAP over the test videos.

Importing this module registers `tvsum_random80` in PROTOCOLS."""

from __future__ import annotations

import numpy as np

from avhighlights.evaluation.datasets import Dataset, Split
from avhighlights.evaluation.protocols import PROTOCOLS, TVSumUMTTop5

TEST_FRACTION = 0.2


def random_split(video_ids: list[str], seed: int, test_fraction: float = TEST_FRACTION) -> Split:
    """One split: round(fraction * M) test ids drawn by `default_rng(seed)`, the rest train; no val."""
    ids = sorted(video_ids)
    order = np.random.default_rng(seed).permutation(len(ids))
    n_test = max(1, int(round(test_fraction * len(ids))))
    test = tuple(sorted(ids[i] for i in order[:n_test]))
    train = tuple(sorted(ids[i] for i in order[n_test:]))
    return Split(f"random80_seed{seed}", train, (), test, "all")


@PROTOCOLS.register("tvsum_random80")
class TVSumRandom8020(TVSumUMTTop5):
    notes = ("Islam et al. TVSum protocol: per seed a random 80/20 split of the 50 videos (40 train, "
             "10 test, not stratified), one model over all training videos, no validation set; UMT "
             "top-5 mAP (and the MINI-Net variant) averaged over the 10 test videos.")

    def splits(self, dataset: Dataset, seed: int) -> list[Split]:
        return [random_split(dataset.video_ids(), seed)]
