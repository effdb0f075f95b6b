"""Fitting unsupervised methods on the user's videos (pipeline/fit.py) and on-the-fly fits of
`score` with the content-keyed fit cache and refit policy (pipeline/fit_cache.py)."""

# ruff: noqa: F811  (test parameters shadow the imported fixtures)
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fit_fixtures import BINDING, TINY_RASL, TINY_RECURRENCE, fit_store, tiny_videos  # noqa: F401 (fixtures)

from avhighlights.core.errors import CheckpointMismatchError, ConfigError, MediaError
from avhighlights.extractors.loudness import LoudnessExtractor
from avhighlights.models.checkpoint import read_checkpoint_info
from avhighlights.pipeline import fit_cache
from avhighlights.pipeline.fit import find_videos, fit_on_videos, fittable_method, grid_overrides
from avhighlights.pipeline.fit_cache import AutoFit, choose_fit
from avhighlights.pipeline.run import RenderOptions, score_videos
from avhighlights.pipeline.score import ScorerSpec, prepare_scorer, resolve_binding


def _fit(videos, out: Path, store: str, method: str = "recurrence", overrides=None, **kwargs):
    tiny = TINY_RECURRENCE if method == "recurrence" else TINY_RASL
    return fit_on_videos(videos, method, out, binding_overrides=BINDING, method_overrides=overrides or tiny,
                         store=store, **kwargs)


def test_find_videos_scans_folders_recursively_and_keeps_files(tiny_videos, tmp_path: Path):
    (tiny_videos[0].parent / "notes.txt").write_text("not a video")
    found = find_videos([tiny_videos[0].parent.parent / "extra", tiny_videos[0], tiny_videos[0]])
    assert found == [tiny_videos[4], tiny_videos[3], tiny_videos[0]]
    with pytest.raises(ConfigError, match="no videos found"):
        find_videos([tmp_path])


def test_only_unsupervised_trainable_methods_can_be_fitted():
    assert fittable_method("rasl").name == "rasl"
    with pytest.raises(ConfigError, match="bench"):
        fittable_method("joint_va")
    with pytest.raises(ConfigError, match="reference"):
        fittable_method("loudness")


def test_binding_overrides_are_checked():
    assert resolve_binding({"visual": "not_installed", "audio": "panns_cnn14_16k"}, BINDING) == BINDING
    with pytest.raises(ConfigError, match="unknown role"):
        resolve_binding({"visual": "logmel"}, {"logmel": "logmel"})
    with pytest.raises(ConfigError, match="--bind visual=EXTRACTOR"):
        resolve_binding({"visual": "not_installed"}, None)


def test_rasl_window_is_30_steps_on_the_one_second_grid_unless_set():
    assert grid_overrides("rasl", None) == {"window_steps": 30}
    assert grid_overrides("rasl", {"window_steps": 12}) == {"window_steps": 12}
    assert grid_overrides("recurrence", {"epochs": 1}) == {"epochs": 1}


def test_recurrence_fit_on_three_videos_writes_a_self_describing_checkpoint(tiny_videos, fit_store, tmp_path):
    report = _fit(tiny_videos[:3], tmp_path / "rec.safetensors", fit_store, seed=3)
    info = read_checkpoint_info(report.checkpoint)
    assert info.method == "recurrence" and info.config["d_model"] == 16
    assert {r: (s.name, s.dim) for r, s in info.binding.items()} == {"visual": ("logmel", 128),
                                                                      "audio": ("loudness", 3)}
    assert info.training["seed"] == 3 and len(info.training["video_sha256"]) == 3
    assert info.training["fit"]["clustering"]["category_sizes"] == [3]  # < 12 videos: one pseudo-category
    assert report.n_steps == 5 + 6 + 7 and len(info.training["fit"]["train_loss"]) == 2


@pytest.mark.parametrize("n_videos", [1, 2])
def test_recurrence_with_one_or_two_videos_uses_one_category(tiny_videos, fit_store, tmp_path, n_videos):
    report = _fit(tiny_videos[:n_videos], tmp_path / "rec.safetensors", fit_store)
    assert report.training["clustering"] == {"k": 1, "silhouette": pytest.approx(float("nan"), nan_ok=True),
                                             "fallback": True, "category_sizes": [n_videos]}
    scorer = prepare_scorer(ScorerSpec(checkpoint=str(report.checkpoint)))
    assert scorer.method.config.epochs == 2


def test_rasl_fits_short_videos_with_looped_30_step_windows(tiny_videos, fit_store, tmp_path):
    report = _fit(tiny_videos[:2], tmp_path / "rasl.safetensors", fit_store, method="rasl")
    assert report.config["window_steps"] == 30 and report.training["windows"] == 2  # one looped window each
    scorer = prepare_scorer(ScorerSpec(checkpoint=str(report.checkpoint)))
    from avhighlights.pipeline.fit import load_samples
    from avhighlights.pipeline.probe import probe

    [sample] = load_samples([probe(tiny_videos[0])], scorer.extractors)
    scores = scorer.method.predict(sample)
    assert scores.shape == (5,) and np.all((scores >= 0) & (scores <= 1))


def test_a_bad_video_fails_before_any_work_naming_the_file(tiny_videos, tmp_path):
    bad = tmp_path / "lib" / "broken.mp4"
    bad.parent.mkdir()
    bad.write_bytes(b"not a video at all")
    store = tmp_path / "store"
    with pytest.raises(MediaError, match="broken.mp4"):
        _fit([tiny_videos[0], bad.parent], tmp_path / "out" / "x.safetensors", str(store))
    assert not (tmp_path / "out").exists() and not store.exists()


def test_supervised_methods_keep_needing_a_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("AVH_ZOO_DIR", str(tmp_path))  # an empty zoo: no default model to fall back on
    with pytest.raises(ConfigError, match="must be trained first"):
        prepare_scorer(ScorerSpec(method="joint_va", binding_overrides=BINDING, auto_fit=AutoFit()))
    with pytest.raises(ConfigError, match="must be trained first"):
        prepare_scorer(ScorerSpec(method="recurrence", binding_overrides=BINDING))  # library API: no auto_fit


def test_checkpoint_binding_wins_and_mismatches_are_refused(tiny_videos, fit_store, tmp_path, monkeypatch):
    ckpt = str(_fit(tiny_videos[:1], tmp_path / "rec.safetensors", fit_store).checkpoint)
    scorer = prepare_scorer(ScorerSpec(method="loudness", checkpoint=ckpt))
    assert {r: ex.name for r, ex in scorer.extractors.items()} == BINDING
    with pytest.raises(CheckpointMismatchError, match="visual"):
        prepare_scorer(ScorerSpec(checkpoint=ckpt, binding_overrides={"visual": "loudness"}))
    monkeypatch.setattr(LoudnessExtractor, "version", "99")
    with pytest.raises(CheckpointMismatchError, match="loudness v1, got loudness v99"):
        prepare_scorer(ScorerSpec(checkpoint=ckpt))


def _manifest(videos: str, created: str = "2026-01-01") -> dict:
    return {"key": videos, "videos": list(videos), "created_utc": created, "checkpoint": f"{videos}.safetensors"}


@pytest.mark.parametrize(
    ("fits", "wanted", "auto", "expected"),
    [
        (["abc"], "abc", AutoFit(), ("abc", "cached")),
        (["abcd", "abc"], "ab", AutoFit(), ("abc", "subset")),
        (["abc"], "abc", AutoFit(refit=True), (None, "fitted")),
        (["xyz"], "a", AutoFit(), (None, "fitted")),  # nothing shared
        (["abc"], "abcd", AutoFit(), (None, "fitted")),  # +33 % > 20 %
        (["abcde", "ab"], "abcdef", AutoFit(), ("abcde", "nearest")),  # +20 % is not above 20 %
        (["abc"], "abcd", AutoFit(refit_growth=0.5), ("abc", "nearest")),
    ],
)
def test_refit_policy(fits, wanted, auto, expected):
    manifest, status, reason = choose_fit([_manifest(f) for f in fits], set(wanted), auto)
    assert ((manifest or {}).get("key"), status) == expected and reason


def test_unreadable_or_incomplete_cache_entries_are_ignored(tmp_path: Path):
    good = {"format": fit_cache.MANIFEST_FORMAT, "key": "k1", "setting": "s", "checkpoint": "k1.safetensors",
            "videos": ["a"], "created_utc": "2026-01-01"}
    (tmp_path / "k1.safetensors").write_bytes(b"weights")
    (tmp_path / "k1.json").write_text(json.dumps(good))
    (tmp_path / "k2.json").write_text(json.dumps({**good, "key": "k2", "checkpoint": "k2.safetensors"}))  # no weights
    (tmp_path / "k3.json").write_text("{truncated")
    (tmp_path / "k4.json").write_text(json.dumps({**good, "setting": "other"}))
    (tmp_path / "k5.json").write_text(json.dumps({k: v for k, v in good.items() if k != "videos"}))
    assert [m["key"] for m in fit_cache.read_manifests(tmp_path, "s")] == ["k1"]


@pytest.fixture
def counted_fits(monkeypatch) -> list[int]:
    """Counts the fits `score` runs (the real fit still runs)."""
    calls = []
    real = fit_cache.fit_infos

    def counting(infos, *args, **kwargs):
        calls.append(len(infos))
        return real(infos, *args, **kwargs)

    monkeypatch.setattr(fit_cache, "fit_infos", counting)
    return calls


def _score(videos, tmp_path: Path, store: str, out: str, **auto) -> list[dict]:
    spec = ScorerSpec(method="recurrence", method_overrides=TINY_RECURRENCE, binding_overrides=BINDING,
                      auto_fit=AutoFit(cache_dir=str(tmp_path / "fits"), **auto))
    results = score_videos(videos, spec, tmp_path / out, store=store,
                           render=RenderOptions(write_reel=False, write_clips=False))
    docs = [json.loads(r.results_json.read_text()) for r in results]
    assert all(len(d["scores"]) > 0 and d["method"] == "recurrence" for d in docs)
    return [json.loads((r.out_dir / "fit.json").read_text()) for r in results]


def test_library_from_environment_subset_nearest_and_growth_refit(tiny_videos, fit_store, tmp_path, counted_fits,
                                                           monkeypatch):
    monkeypatch.setenv("AVH_LIBRARY", str(tiny_videos[0].parent))  # videos 0-2
    first = _score(tiny_videos[3:4], tmp_path, fit_store, "o1")
    assert counted_fits == [4] and first[0]["n_fitted"] == 4 and first[0]["library"] == [str(tiny_videos[0].parent)]
    probed = []
    monkeypatch.setattr(fit_cache, "probe", lambda path: probed.append(path))  # library probes are remembered
    subset = _score(tiny_videos[1:2], tmp_path, fit_store, "o_subset")  # a1 + library 0-2: all in the fit
    assert probed == []
    assert counted_fits == [4] and subset[0]["status"] == "subset" and subset[0]["key"] == first[0]["key"]
    nearest = _score(tiny_videos[4:5], tmp_path, fit_store, "o2", refit_growth=0.5)  # 0-2 + 4: 1 unseen of 4
    assert counted_fits == [4] and nearest[0]["status"] == "nearest" and nearest[0]["n_unseen"] == 1
    grown = _score(tiny_videos[4:5], tmp_path, fit_store, "o3")  # +25 % > 20 %: refit on 0-2 + 4
    assert counted_fits == [4, 4] and grown[0]["status"] == "fitted" and grown[0]["key"] != first[0]["key"]


def test_a_bad_library_video_fails_naming_it_before_any_fit(tiny_videos, tmp_path, counted_fits):
    library = tmp_path / "library"
    library.mkdir()
    (library / "broken.mov").write_bytes(b"\x00" * 64)
    with pytest.raises(MediaError, match="broken.mov"):
        _score(tiny_videos[:1], tmp_path, str(tmp_path / "store"), "out", library=(str(library),))
    assert counted_fits == [] and not (tmp_path / "out").exists() and not (tmp_path / "store").exists()
