"""Bridges from dataset feature sources to raw-video extractors: the I3D network's pytorch-i3d key layout and strict
loading, the flow / window recipe, shapes and hops of `i3d`, `i3d_rgb` and `panns_cnn14_2s` on a real clip, the
offline errors (exit 4 naming each missing file, URL and folder), the refusals (exit 5) and scoring a real clip with
a checkpoint bound to the UMT dataset sources on the bridge's own 2-s rows.

Every extractor here runs with random weights and reduced frame sizes: these tests check mechanics only (shapes,
time spans, plumbing), never feature quality."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from avhighlights.core.errors import CheckpointMismatchError, WeightsNotFoundError
from avhighlights.core.sample import FeatureSource, Sample
from avhighlights.core.timebase import FeatureTrack, align, second_grid
from avhighlights.core.types import VideoInfo
from avhighlights.evaluation.datasets import UMT_SOURCE_OPTIONS, UMT_SOURCES
from avhighlights.extractors import create_extractor
from avhighlights.extractors.bridges import bridge_for, bridges
from avhighlights.extractors.i3d import I3D_FLOW, I3D_RGB, flow_to_unit_range, window_times
from avhighlights.extractors.i3d_net import InceptionI3d, expected_i3d_parameters, same_padding
from avhighlights.extractors.inception_yt8m import YT8M_PCA
from avhighlights.extractors.optical_flow import RAFT_LARGE_SINTEL
from avhighlights.extractors.panns import CNN14_32K
from avhighlights.extractors.weights import resolve_weights
from avhighlights.models.base import create_method
from avhighlights.models.checkpoint import load_checkpoint, save_checkpoint
from avhighlights.pipeline.bridge_scoring import bridge_predict
from avhighlights.pipeline.media import open_media
from avhighlights.pipeline.probe import probe
from avhighlights.pipeline.score import build_sample

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "media"
# mechanics only: random weights, 2 fps, 128-px frames (RAFT needs 128) cropped to 64, RAFT-small, 2 iterations
TINY_I3D = {"random_init": True, "fps": 2, "min_side": 128, "crop_size": 64, "flow_model": "raft_small",
            "flow_iters": 2}
TINY_OVERRIDES = {"i3d": TINY_I3D, "i3d_rgb": TINY_I3D, "panns_cnn14_2s": {"random_init": True}}
TINY_JOINT_VA = {"d_model": 16, "heads": 2, "fc_hidden": 8}


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """5 s of a real clip with music (Big Buck Bunny, CC-BY), scaled to 320x180: 2-s rows [0,2), [2,4), [4,5)."""
    source = MEDIA / "bbb_animation_music_30s.webm"
    if not source.is_file():
        pytest.skip(f"{source} not available")
    out = tmp_path_factory.mktemp("bridge_clip") / "bbb_5s.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), "-t", "5", "-vf", "scale=320:180",
                    "-c:v", "libx264", "-c:a", "aac", str(out)], check=True)
    return out


@pytest.fixture()
def offline(monkeypatch, tmp_path) -> Path:
    """No network, an empty cache and one empty weights folder; returns that folder."""
    folder = tmp_path / "weights_here"
    folder.mkdir()
    monkeypatch.setenv("AVH_OFFLINE", "1")
    monkeypatch.setenv("AVH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("AVH_WEIGHTS_DIR", str(folder))
    return folder


# --- the I3D network -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("channels", "n_params"), [(3, 12_697_264), (2, 12_675_312)])
def test_i3d_state_dict_has_the_pytorch_i3d_keys_and_shapes(channels: int, n_params: int):
    net = InceptionI3d(channels)
    have = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert have == expected_i3d_parameters(channels)
    assert have["Conv3d_1a_7x7.conv3d.weight"] == (64, channels, 7, 7, 7)
    assert have["Mixed_5c.b1b.conv3d.weight"] == (384, 192, 3, 3, 3) and have["logits.conv3d.bias"] == (400,)
    assert "Mixed_4b.b3a.weight" not in have and len(have) == 6 * (3 + 9 * 6) + 2  # 57 conv-BN units + logits
    assert sum(p.numel() for p in net.parameters()) == n_params


def test_i3d_checkpoint_in_the_published_layout_loads_strictly_and_reproduces_outputs(tmp_path: Path):
    torch.manual_seed(1)
    source = InceptionI3d(3).eval()
    for module in source.modules():  # non-trivial BN statistics, as a trained checkpoint has
        if isinstance(module, torch.nn.BatchNorm3d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    state = source.state_dict()
    old_layout = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}  # as 2018 torch saved
    torch.save(old_layout, tmp_path / "rgb_imagenet.pt")
    extractor = create_extractor("i3d_rgb", {"weights_path": str(tmp_path / "rgb_imagenet.pt")}, device="cpu")
    x = torch.rand(1, 3, 4, 64, 64) * 2 - 1
    with torch.inference_mode():
        np.testing.assert_array_equal(extractor.net(x).numpy(), source(x).numpy())
    broken = dict(old_layout)
    broken.pop("Mixed_5c.b0.conv3d.weight")
    with pytest.raises(RuntimeError, match="Missing key"):
        InceptionI3d(3).load_state_dict(broken, strict=True)
    with pytest.raises(RuntimeError, match="size mismatch"):
        InceptionI3d(2).load_state_dict(old_layout, strict=True)  # an RGB file in the 2-channel flow stem


def test_same_padding_puts_the_extra_row_at_the_end():
    assert same_padding((224, 224, 224), (7, 7, 7), (2, 2, 2)) == (2, 3, 2, 3, 2, 3)  # 7 - 2 = 5 -> 2 + 3
    assert same_padding((7, 7, 8), (3, 3, 3), (1, 2, 2)) == (0, 1, 1, 1, 1, 1)  # W=8 even/2: 1; H=7 odd/2: 2
    assert same_padding((1, 1, 1), (2, 7, 7), (2, 1, 1)) == (3, 3, 3, 3, 0, 1)


def test_flow_values_are_clipped_quantised_and_scaled_like_video_features():
    flow = torch.tensor([0.0, 20.0, -20.0, 35.0, -1e3, 10.0])
    expected = 2 * np.round(128 + 255 / 40 * np.clip(flow.numpy(), -20, 20)) / 255 - 1  # hand formula
    np.testing.assert_allclose(flow_to_unit_range(flow).numpy(), expected, rtol=0, atol=1e-6)
    assert flow_to_unit_range(flow)[2] == -1.0 and flow_to_unit_range(flow)[3] == flow_to_unit_range(flow)[1]


def test_window_times_take_n_frames_plus_one_per_window_on_the_2s_grid():
    n_windows, per_window, times = window_times(5.0, 2.0, 4.0)
    assert (n_windows, per_window) == (3, 9)  # 2 full windows + the 1-s tail; 8 frames + 1 for the last flow pair
    np.testing.assert_allclose(times[:9], (np.arange(9) + 0.5) / 4)
    np.testing.assert_allclose(times[9:11], [2.125, 2.375])
    assert times.max() == 5.0 and times.shape == (27,)  # the tail's missing frames repeat the last one


# --- extractors on a real clip (random weights: mechanics only) ------------------------------------------------

@pytest.fixture(scope="module")
def bridge_tracks(clip: Path) -> dict[str, FeatureTrack]:
    """The tiny bridge extractors' tracks of the clip, computed once."""
    info, tracks = probe(clip), {}
    for name in ("i3d", "i3d_rgb", "panns_cnn14_2s"):
        with open_media(info) as media:
            tracks[name] = create_extractor(name, TINY_OVERRIDES[name], device="cpu").extract(media)
    return tracks


def test_bridge_extractors_on_a_real_clip_shapes_hops_and_spans(bridge_tracks: dict[str, FeatureTrack]):
    tracks = bridge_tracks
    for name in ("i3d", "i3d_rgb", "panns_cnn14_2s"):
        extractor = create_extractor(name, TINY_OVERRIDES[name])
        assert tracks[name].values.shape == (3, extractor.dim) and extractor.hop_s == 2.0
        np.testing.assert_allclose(tracks[name].spans.start_s, [0, 2, 4])
        np.testing.assert_allclose(tracks[name].spans.end_s, [2, 4, 6])
        assert np.isfinite(tracks[name].values).all()
    assert tracks["i3d"].dim == 2048 and tracks["i3d_rgb"].dim == 1024 and tracks["panns_cnn14_2s"].dim == 2048
    np.testing.assert_array_equal(tracks["i3d"].values[:, :1024], tracks["i3d_rgb"].values)  # RGB first, as UMT
    assert not np.array_equal(tracks["i3d"].values[:, 1024:], tracks["i3d"].values[:, :1024])


def test_bridge_identities_carry_every_weight_and_the_recipe():
    i3d, rgb = (create_extractor(n, TINY_I3D, device="cpu") for n in ("i3d", "i3d_rgb"))
    assert i3d.weight_names() == (I3D_RGB.name, I3D_FLOW.name, "raft_small_tv")
    assert rgb.weight_names() == (I3D_RGB.name,)
    assert i3d.identity_hash() != create_extractor("i3d", {**TINY_I3D, "flow_iters": 3}).identity_hash()
    assert i3d.identity_hash() == create_extractor("i3d", {**TINY_I3D, "flow_batch_size": 2}).identity_hash()
    assert create_extractor("panns_cnn14_2s", {"random_init": True}).config.chunk_s == 2.0


# --- weights offline ---------------------------------------------------------------------------------------------

def test_offline_errors_name_each_missing_file_its_url_and_the_folders(offline: Path, tmp_path: Path):
    def missing(name: str, overrides: dict) -> str:
        with pytest.raises(WeightsNotFoundError) as caught:
            create_extractor(name, overrides).weights_sha256()
        assert caught.value.exit_code == 4
        return str(caught.value)

    for spec, overrides in [(I3D_RGB, {}), (I3D_FLOW, {"weights_path": str(_i3d_file(tmp_path, 3))}),
                            (RAFT_LARGE_SINTEL, {"weights_path": str(_i3d_file(tmp_path, 3)),
                                                 "flow_weights_path": str(_i3d_file(tmp_path, 2))})]:
        message = missing("i3d", overrides)
        assert spec.filename in message and spec.url in message and str(offline) in message
        assert str(tmp_path / "cache" / "weights") in message and "offline mode is on" in message
    message = missing("panns_cnn14_2s", {})
    assert "Cnn14_mAP=0.431.pth" in message and "zenodo.org/record/3987831" in message and str(offline) in message
    with pytest.raises(WeightsNotFoundError) as caught:
        resolve_weights(YT8M_PCA.name)
    message = str(caught.value)
    assert "yt8m_pca_1024.npz" in message and "http://data.yt8m.org/yt8m_pca.tgz" in message
    assert "pca import-yt8m" in message and str(offline) in message


def test_several_missing_files_are_listed_one_per_line(offline: Path):
    from avhighlights.pipeline.bridge_scoring import require_weights

    extractors = [create_extractor("i3d", {}), create_extractor("panns_cnn14_2s", {})]
    with pytest.raises(WeightsNotFoundError) as caught:
        require_weights(extractors)
    lines = str(caught.value).splitlines()
    assert lines[0] == "4 weights files are missing:"  # I3D RGB + flow + RAFT (one extractor's list), then PANNs
    assert [line.startswith("  - ") for line in lines[1:]] == [True] * 4
    names = (I3D_RGB.filename, I3D_FLOW.filename, RAFT_LARGE_SINTEL.filename, "Cnn14_mAP=0.431.pth")
    assert [line[4:].startswith(name) for line, name in zip(lines[1:], names, strict=True)] == [True] * 4
    assert caught.value.exit_code == 4


def _i3d_file(folder: Path, channels: int) -> Path:
    path = folder / f"i3d_{channels}.pt"
    if not path.exists():
        torch.save(InceptionI3d(channels).state_dict(), path)
    return path


# --- bridge table, refusals, scoring on the bridge's rows ---------------------------------------------------------

def test_every_dataset_source_of_the_benchmarks_has_its_bridge():
    assert bridges() == {"umt_i3d_rgb_flow": "i3d", "umt_i3d_rgb": "i3d_rgb", "umt_panns_cnn14": "panns_cnn14_2s",
                         "yt8m_rgb_dequantised": "inception_v3_pca_yt8m"}
    options = [source for role in UMT_SOURCE_OPTIONS.values() for source, _ in role.values()]
    for source in [*UMT_SOURCES.values(), *options]:
        assert create_extractor(bridge_for(source.name)).dim == source.dim
    with pytest.raises(CheckpointMismatchError, match="no registered extractor reproduces dataset feature source"):
        bridge_for("qv_slowfast_clip")


def _checkpoint(path: Path, binding: dict[str, FeatureSource]) -> Path:
    method = create_method("joint_va", {role: src.dim for role, src in binding.items()}, TINY_JOINT_VA)
    return save_checkpoint(method, path, binding, {"note": "untrained: mechanics only"},
                           model_card={"dataset": "youtube_highlights"})


@pytest.mark.parametrize(("binding", "bind", "expected"), [
    ({**UMT_SOURCES, "visual": FeatureSource("qv_slowfast_clip", "x", "dataset", 2816)}, [],
     ["qv_slowfast_clip", "no registered extractor reproduces", "youtube_highlights"]),
    (UMT_SOURCES, ["--bind", "visual=r3d34"], ["umt_i3d_rgb_flow", "r3d34 does not reproduce", "bridge is i3d"]),
    (UMT_SOURCES, ["--bind", "visual=i3d_rgb"], ["umt_i3d_rgb_flow", "i3d_rgb does not reproduce"]),
    ({**UMT_SOURCES, "visual": FeatureSource("umt_i3d_rgb_flow", "umt-release", "dataset", 1024)}, [],
     ["1024-d umt_i3d_rgb_flow", "i3d gives 2048-d"]),
])
def test_score_refuses_unbridged_or_mismatched_dataset_sources_with_exit_5(clip, tmp_path, capsys, binding, bind,
                                                                           expected):
    from avhighlights.cli.main import main

    path = _checkpoint(tmp_path / "c.safetensors", binding)
    code = main(["score", str(clip), "--checkpoint", str(path), *bind, "--out", str(tmp_path / "o"),
                 "--progress", "none", "--no-cache"])
    error = capsys.readouterr().err.strip()
    assert code == 5 and all(part in error for part in expected) and "\n" not in error, error
    assert not (tmp_path / "o").exists()


def test_score_with_a_umt_checkpoint_offline_exits_4_naming_the_bridge_weights(clip, tmp_path, capsys, offline):
    from avhighlights.cli.main import main

    path = _checkpoint(tmp_path / "umt.safetensors", UMT_SOURCES)
    code = main(["score", str(clip), "--checkpoint", str(path), "--out", str(tmp_path / "o"), "--progress", "none"])
    error = capsys.readouterr().err.strip()
    assert code == 4 and error.splitlines()[0].endswith("4 weights files are missing:") and str(offline) in error
    assert len(error.splitlines()) == 5  # one line per missing file, not one long line
    for spec in (I3D_RGB, I3D_FLOW, RAFT_LARGE_SINTEL, CNN14_32K):  # every missing file of the bridge, at once
        assert spec.filename in error and spec.url in error, spec.filename
    assert not (tmp_path / "o").exists()  # refused before anything is written


def _video_info(duration_s: float) -> VideoInfo:
    return VideoInfo(Path("v.mp4"), "0" * 64, duration_s, Fraction(25), False, 64, 64, 0, "h264", False)


def test_bridge_predict_runs_the_method_on_the_native_rows_and_repeats_each_rows_score():
    info = _video_info(5.3)  # 2-s rows [0,2) [2,4) [4,5.3); 1-s grid of 6 steps
    rows = np.random.default_rng(0).normal(size=(3, 6)).astype(np.float32)
    sample = build_sample(info, {"visual": FeatureTrack.regular(rows, hop_s=2.0)})
    grid, row_spans = second_grid(5.3), second_grid(5.3, 2.0)
    np.testing.assert_array_equal(align(sample.features["visual"], grid, row_spans), rows)  # exact round trip
    norm = create_method("feature_norm", {"visual": 6})
    scores = bridge_predict(norm, sample, info, 2.0)
    np.testing.assert_allclose(scores, np.repeat(np.linalg.norm(rows, axis=1), [2, 2, 2]), rtol=1e-6)
    np.testing.assert_array_equal(bridge_predict(norm, sample, info, None), norm.predict(sample))


def test_umt_checkpoint_scores_a_real_clip_on_the_bridge_rows_end_to_end(clip: Path, tmp_path: Path,
                                                                         bridge_tracks: dict[str, FeatureTrack]):
    """Mechanics only (random-weight backbones, an untrained tiny joint_va): the library path the CLI takes."""
    from avhighlights.pipeline.run import RenderOptions, score_videos
    from avhighlights.pipeline.score import ScorerSpec

    path = _checkpoint(tmp_path / "umt.safetensors", UMT_SOURCES)
    spec = ScorerSpec(checkpoint=str(path), extractor_overrides=TINY_OVERRIDES, device="cpu")
    [result] = score_videos([clip], spec, tmp_path / "out", store=None,
                            render=RenderOptions(write_reel=False, write_clips=False))
    data = json.loads(result.results_json.read_text())
    scores = np.array([row["score"] if isinstance(row, dict) else row for row in data["scores"]], dtype=float)
    assert scores.shape == (5,) and data["checkpoint"] == str(path)
    assert scores[0] == scores[1] and scores[2] == scores[3]  # one score per 2-s row
    names = json.dumps(data["extractors"])
    assert "i3d" in names and "panns_cnn14_2s" in names

    method, _ = load_checkpoint(path)
    tracks = {"visual": bridge_tracks["i3d"].values, "audio": bridge_tracks["panns_cnn14_2s"].values}
    direct = method.predict(Sample("v", tracks, 2.0, meta={"n_steps": 3}))  # the model on the 3 native rows
    np.testing.assert_allclose(scores, np.repeat(direct, [2, 2, 1]), rtol=1e-5, atol=1e-6)


def test_yt8m_bridge_finds_its_pca_in_the_weights_folders_and_keeps_the_8bit_lattice(clip, offline, tmp_path):
    from avhighlights.extractors.pca import YT8M_DEQUANT_OFFSET, PcaParams, save_pca

    eye = np.eye(2048, 1024, dtype=np.float32)  # a valid 2048 -> 1024 PCA: mean 0, unit eigenvalues
    save_pca(PcaParams(np.zeros(2048, np.float32), eye, np.ones(1024, np.float32)), offline / "yt8m_pca_1024.npz")
    extractor = create_extractor("inception_v3_pca_yt8m", {"random_init": True, "image_size": 75}, device="cpu")
    assert extractor.pca_path == offline / "yt8m_pca_1024.npz" and extractor.dim == 1024
    with open_media(probe(clip)) as media:
        track = extractor.extract(media)
    assert track.values.shape == (5, 1024) and extractor.hop_s == 1.0
    codes = (track.values.astype(np.float64) + 2.0 - YT8M_DEQUANT_OFFSET) * 255.0 / 4.0
    np.testing.assert_allclose(codes, np.round(codes), atol=1e-3)  # dequantised uint8 codes, as in mr_hisum.h5
