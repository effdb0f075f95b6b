"""Scoring one video: the scorer's features on the 1-s grid (`featurize`) -> the method's score per second.
The scorer comes from the factory of `pipeline/scorer.py`; selection and rendering follow in `pipeline/run.py`."""

from __future__ import annotations

from avhighlights.core.progress import ProgressFn
from avhighlights.core.sample import Sample
from avhighlights.core.timebase import second_grid
from avhighlights.core.types import ScoreCurve, VideoInfo
from avhighlights.extractors.store import FeatureStore
from avhighlights.pipeline.binding import (  # noqa: F401  (re-exported: the binding helpers)
    build_extractors,
    extractor_sources,
    resolve_binding,
)
from avhighlights.pipeline.bridge_scoring import bridge_predict
from avhighlights.pipeline.extract import ExtractionStats
from avhighlights.pipeline.featurize import build_sample, featurize  # noqa: F401  (build_sample re-exported)
from avhighlights.pipeline.run_config import ScorerSpec  # noqa: F401  (re-exported)
from avhighlights.pipeline.scorer import (  # noqa: F401  (re-exported: the factory's API)
    PreparedScorer,
    create_scorer,
    fits_on_the_fly,
    scorer_extractors,
    untrained_methods,
)

prepare_scorer = create_scorer  # the factory under its earlier name


def score_sample(scorer: PreparedScorer, info: VideoInfo, sample: Sample) -> ScoreCurve:
    """Run the method on an aligned sample; scores live on the 1-s grid."""
    grid = second_grid(info.duration_s)
    n = sample.n_steps
    scores = bridge_predict(scorer.method, sample, info, scorer.bridge_hop_s)  # plain predict unless bridged
    if scores.shape != (n,):
        raise RuntimeError(f"method {scorer.method.name} returned {scores.shape} scores for {n} steps")
    return ScoreCurve(scores, grid.start_s, grid.end_s, scorer.method.name, scorer.checkpoint,
                      extractors=extractor_sources(scorer.extractors))


def score_video(scorer: PreparedScorer, info: VideoInfo, store: FeatureStore | None = None, *,
                stats: ExtractionStats | None = None, progress: ProgressFn | None = None) -> ScoreCurve:
    """`featurize` then `score_sample`: the score curve of one probed video."""
    return score_sample(scorer, info, featurize(scorer.extractors, info, store, stats=stats, progress=progress))
