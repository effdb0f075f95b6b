"""RunConfig: one frozen configuration of a run, round-tripped through plain JSON (`to_dict`/`from_dict`), its
sparse form (`changes`) read back the same way, and the CLI building it once from the `score` options."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from avhighlights.core.errors import ConfigError
from avhighlights.pipeline.render import EXPORTS
from avhighlights.pipeline.run_config import AutoFit, RenderOptions, RunConfig, ScorerSpec
from avhighlights.pipeline.select import SelectionConfig

names = st.text("abcdefghij_", min_size=1, max_size=8)
json_values = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(-10, 10, allow_nan=False), names)
positive = st.floats(0.1, 600.0, allow_nan=False)

auto_fits = st.builds(AutoFit, library=st.lists(names, max_size=3).map(tuple), seed=st.integers(0, 99),
                      refit=st.booleans(), refit_growth=st.floats(0.0, 2.0), cache_dir=st.none() | names)
scorers = st.builds(
    ScorerSpec, method=names, checkpoint=st.none() | names | names.map(lambda n: f"zoo:{n}"),
    method_overrides=st.none() | st.dictionaries(names, json_values, max_size=3),
    extractor_overrides=st.none() | st.dictionaries(names, st.dictionaries(names, json_values, max_size=2), max_size=2),
    device=st.sampled_from([None, "cpu", "cuda", "cuda:1"]),
    binding_overrides=st.none() | st.dictionaries(names, names, max_size=3), auto_fit=st.none() | auto_fits)
selections = st.builds(SelectionConfig, top_ratio=st.floats(0.01, 1.0), min_clip_s=st.floats(0.0, 10.0),
                       pad_s=st.floats(0.0, 3.0), max_total_s=st.none() | positive, merge_gap_s=st.floats(0.0, 5.0),
                       target_s=st.none() | positive, threshold=st.none() | st.floats(-5, 5),
                       threshold_quantile=st.none())
renders = st.builds(RenderOptions, stream_copy=st.booleans(), write_reel=st.booleans(), write_clips=st.booleans(),
                    formats=st.lists(st.sampled_from(sorted(EXPORTS)), unique=True).map(tuple))
configs = st.builds(RunConfig, scorer=scorers, selection=selections, render=renders,
                    store=st.none() | st.just("default") | names)


@settings(max_examples=150, deadline=None)
@given(configs)
def test_to_dict_from_dict_round_trips_through_json(config):
    plain = json.loads(json.dumps(config.to_dict()))  # plain JSON types only
    assert RunConfig.from_dict(plain) == config
    assert RunConfig.from_dict(json.loads(json.dumps(config.changes()))) == config
    assert hash(RunConfig.from_dict(plain).selection) == hash(config.selection)


def test_changes_keep_only_what_differs_from_the_defaults():
    assert RunConfig().changes() == {} and RunConfig.from_dict({}) == RunConfig() == RunConfig.from_dict(None)
    config = RunConfig(ScorerSpec(method="rasl", auto_fit=AutoFit(seed=3)), SelectionConfig(target_s=60.0),
                       RenderOptions(write_reel=False), None)
    assert config.changes() == {
        "scorer": {"method": "rasl", "auto_fit": {"library": [], "seed": 3, "refit": False, "refit_growth": 0.2,
                                                  "cache_dir": None}},
        "selection": {"target_s": 60.0}, "render": {"write_reel": False}, "store": None}


def test_a_bad_part_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown field"):
        RunConfig.from_dict({"scorer": {"methd": "loudness"}})
    with pytest.raises(ConfigError, match="unknown field"):
        RunConfig.from_dict({"top_ratio": 0.3})
    with pytest.raises(ConfigError, match="top_ratio"):
        RunConfig.from_dict({"selection": {"top_ratio": 0.0}})
    with pytest.raises(ConfigError, match="export formats"):
        RunConfig.from_dict({"render": {"formats": ["edl", "nope"]}})
    with pytest.raises(ConfigError, match="expected an object"):
        RunConfig.from_dict({"scorer": "loudness"})
    with pytest.raises(ConfigError, match="refit-growth"):
        RunConfig.from_dict({"scorer": {"auto_fit": {"refit_growth": -1}}})


def test_the_score_command_line_builds_one_config():
    from avhighlights.cli.main import build_parser
    from avhighlights.cli.run_config import run_config_from_args

    args = build_parser().parse_args([
        "score", "v.mp4", "--out", "o", "--method", "recurrence", "--bind", "visual=logmel", "--set", "epochs=2",
        "--device", "cpu", "--library", "lib", "--seed", "4", "--refit", "--target-s", "30", "--no-reel",
        "--export", "edl,csv", "--no-cache"])
    assert run_config_from_args(args) == RunConfig(
        ScorerSpec(method="recurrence", device="cpu", binding_overrides={"visual": "logmel"},
                   method_overrides={"epochs": 2}, auto_fit=AutoFit(library=("lib",), seed=4, refit=True)),
        SelectionConfig(target_s=30.0), RenderOptions(write_reel=False, formats=("edl", "csv")), None)
    plain = run_config_from_args(build_parser().parse_args(["score", "v.mp4", "--out", "o"]))
    assert plain == RunConfig(ScorerSpec(auto_fit=AutoFit()))  # `score` always may fit an unsupervised method
