"""Bridges from dataset feature sources to raw-video extractors.

A benchmark checkpoint trained on a dataset's released features (a `FeatureSource` of kind "dataset", e.g. the UMT
release's `umt_i3d_rgb_flow`) can score raw video only through an extractor that reproduces those features. An
extractor declares the sources it reproduces in its class attribute `reproduces` (a tuple of dataset source names;
absent = none); this module builds the source -> extractor table from the registry (`EXTRACTORS.load_all()`).

Registered bridges: `umt_i3d_rgb_flow` -> `i3d`, `umt_panns_cnn14` -> `panns_cnn14_2s`, `yt8m_rgb_dequantised` ->
`inception_v3_pca_yt8m`.
"""

from __future__ import annotations

from avhighlights.core.errors import CheckpointMismatchError, RegistryError
from avhighlights.extractors.base import EXTRACTORS


def reproduced_sources(extractor_name: str) -> tuple[str, ...]:
    """The dataset feature sources the registered extractor declares it reproduces."""
    return tuple(getattr(EXTRACTORS.get(extractor_name), "reproduces", ()))


def bridges() -> dict[str, str]:
    """dataset feature source name -> the registered extractor that reproduces it (every extractor is imported)."""
    table: dict[str, str] = {}
    for name in EXTRACTORS.load_all():
        for source in reproduced_sources(name):
            if source in table:
                raise RegistryError(f"extractors {table[source]!r} and {name!r} both declare that they reproduce "
                                    f"dataset source {source!r}")
            table[source] = name
    return table


def bridge_for(feature_source: str) -> str:
    """The extractor that reproduces `feature_source`; CheckpointMismatchError when none is registered."""
    table = bridges()
    if feature_source not in table:
        known = ", ".join(f"{s} -> {e}" for s, e in sorted(table.items())) or "none"
        raise CheckpointMismatchError(f"no registered extractor reproduces dataset feature source {feature_source!r} "
                                      f"from raw video (bridges: {known})")
    return table[feature_source]
