"""The TVSum random 80/20 protocol used for the recurrence method (Islam et al.)."""

from __future__ import annotations

import numpy as np

from avhighlights.evaluation.protocol_random_split import TVSumRandom8020, random_split
from avhighlights.evaluation.protocols import PROTOCOLS


def test_random_split_is_80_20_disjoint_and_seeded():
    ids = [f"v{i:02d}" for i in range(50)]
    split = random_split(ids, 42)
    assert len(split.train_ids) == 40 and len(split.test_ids) == 10 and split.val_ids == ()
    assert set(split.train_ids) | set(split.test_ids) == set(ids) and not set(split.train_ids) & set(split.test_ids)
    assert random_split(list(reversed(ids)), 42) == split  # independent of input order
    assert random_split(ids, 123).test_ids != split.test_ids


def test_protocol_is_registered_and_uses_the_umt_metric():
    assert PROTOCOLS.get("tvsum_random80") is TVSumRandom8020
    proto = TVSumRandom8020()
    assert proto.dataset == "tvsum" and "top5_map_umt" in proto.metrics


def test_protocol_on_shared_tvsum(data_root):
    from avhighlights.evaluation.tvsum_data import TVSumDataset

    dataset = TVSumDataset.from_data_root(data_root)
    (split,) = TVSumRandom8020().splits(dataset, 42)
    assert len(split.test_ids) == 10 and len(split.train_ids) == 40
    samples = dataset.samples(split.test_ids[:2])
    oracle = [s.meta["annotations"].mean(axis=1) for s in samples]
    flat = [np.zeros(s.n_steps) for s in samples]
    proto = TVSumRandom8020()
    assert proto.evaluate(samples, oracle)["top5_map_umt"] > proto.evaluate(samples, flat)["top5_map_umt"]
