"""Visual extractors on tiny random-weight variants: official parameter names/shapes of the 3D-ResNet-34
checkpoint, strict loading of files in the official layouts, the PCA recipe and its CLI, timing on videos whose
colour changes at known times, declared == produced dims, identities, and cached extraction through the store."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from avhighlights.core.errors import CheckpointError, ConfigError, WeightsHashError, WeightsNotFoundError
from avhighlights.extractors import EXTRACTORS, create_extractor
from avhighlights.extractors.pca import (
    PcaParams,
    apply_pca,
    dequantize,
    fit_pca,
    from_youtube8m,
    load_pca,
    quantize,
    save_pca,
)
from avhighlights.extractors.r3d_net import ResNet3d
from avhighlights.pipeline.media import open_media
from avhighlights.pipeline.probe import probe

VISUAL = ("mobilenet_v1_025", "inception_v3_pool", "inception_v3_pca", "r3d34", "r3d18_tv", "swin")
TINY_SWIN = {"embed_dim": 16, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 1, 1], "image_size": 56, "crop_pct": 1.0}


def tiny_overrides(name: str, pca_path: Path | None = None) -> dict:
    """Random-init, reduced-resolution configs that run in a fraction of a second per video."""
    tiny = {
        "mobilenet_v1_025": {"image_size": 64},
        "inception_v3_pool": {"image_size": 75},
        "inception_v3_pca": {"image_size": 75, "pca_path": str(pca_path)},
        "r3d34": {"image_size": 32, "clip_frames": 4},
        "r3d18_tv": {"resize_hw": [40, 48], "crop_size": 32, "clip_frames": 4},
        "swin": TINY_SWIN,
    }[name]
    return {"random_init": True, **tiny}


def colour_video(path: Path, scenes: list[tuple[str, float]], fps: int = 25, size: str = "96x64") -> Path:
    """Lossless H.264 of solid-colour scenes [(colour, seconds), ...] played back to back."""
    sources = ";".join(f"color=c={c}:s={size}:r={fps}:d={d}[s{i}]" for i, (c, d) in enumerate(scenes))
    chain = sources + ";" + "".join(f"[s{i}]" for i in range(len(scenes))) + f"concat=n={len(scenes)}:v=1[v]"
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-filter_complex", chain, "-map", "[v]", "-c:v", "libx264",
           "-qp", "0", "-pix_fmt", "yuv444p", str(path)]
    subprocess.run(cmd, check=True)
    return path


@pytest.fixture(scope="module")
def pca_file(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    return save_pca(fit_pca(rng.standard_normal((40, 2048)).astype(np.float32), 8),
                    tmp_path_factory.mktemp("pca") / "pca.npz")


@pytest.fixture(scope="module")
def scenes_1s(tmp_path_factory) -> Path:
    """Red [0, 2), lime [2, 4), blue [4, 5.5): colour changes at whole seconds, a 0.5-s final step."""
    return colour_video(tmp_path_factory.mktemp("scenes") / "whole.mp4", [("red", 2), ("lime", 2), ("blue", 1.5)])


@pytest.fixture(scope="module")
def scenes_fine(tmp_path_factory) -> Path:
    """Red [0, 1.4), lime [1.4, 2.2), blue [2.2, 3): changes inside seconds, on the 0.2-s grid."""
    return colour_video(tmp_path_factory.mktemp("scenes") / "fine.mp4", [("red", 1.4), ("lime", 0.8), ("blue", 0.8)])


def _extract(extractor, path: Path):
    with open_media(probe(path)) as media:
        return extractor.extract(media)


def change_rows(values: np.ndarray) -> list[int]:
    """Rows that differ from the previous row (relative to the largest step)."""
    steps = np.linalg.norm(np.diff(values, axis=0), axis=1)  # (T - 1,)
    return [int(i) + 1 for i in np.flatnonzero(steps > 1e-3 * max(steps.max(), 1e-12))]


# ------------------------------------------------------------------------------------------------ r3d34 names
def _hara_resnet34_names() -> dict[str, tuple[int, ...]]:
    """(name, shape) of the official resnet-34-kinetics.pth state dict (DataParallel prefix stripped), written
    out from the published architecture: conv1 7x7x7, BasicBlocks [3, 4, 6, 3] at 64/128/256/512 channels,
    shortcut B (1x1x1 conv + BN) at the first block of layers 2-4, fc 400 x 512."""
    def bn(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
        return {f"{prefix}.{k}": (() if k == "num_batches_tracked" else (c,))
                for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}

    names = {"conv1.weight": (64, 3, 7, 7, 7), **bn("bn1", 64)}
    c_in = 64
    for layer, (planes, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3), strict=True), 1):
        for b in range(blocks):
            p = f"layer{layer}.{b}"
            names[f"{p}.conv1.weight"] = (planes, c_in if b == 0 else planes, 3, 3, 3)
            names[f"{p}.conv2.weight"] = (planes, planes, 3, 3, 3)
            names.update(bn(f"{p}.bn1", planes) | bn(f"{p}.bn2", planes))
            if b == 0 and layer > 1:
                names[f"{p}.downsample.0.weight"] = (planes, c_in, 1, 1, 1)
                names.update(bn(f"{p}.downsample.1", planes))
        c_in = planes
    return names | {"fc.weight": (400, 512), "fc.bias": (400,)}


def test_r3d34_state_dict_has_exactly_the_official_names_and_shapes():
    state = ResNet3d().state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == _hara_resnet34_names()
    backbone = sum(v.numel() for k, v in state.items() if k.endswith(("weight", "bias")) and not k.startswith("fc."))
    assert round(backbone / 1e6, 1) == 63.5  # Hara et al. 2018, Table 2: 3D ResNet-34, 63.5 M parameters


def test_r3d34_feature_map_sizes():
    net = ResNet3d().eval()
    with torch.inference_mode():
        assert net(torch.zeros(1, 3, 16, 112, 112)).shape == (1, 512)
        assert net.classify(torch.zeros(1, 3, 16, 112, 112)).shape == (1, 400)


def _official_checkpoint(path: Path, with_batch_counters: bool = True) -> dict[str, torch.Tensor]:
    """A random state dict saved like the 2017 release: {'state_dict': {'module.' + name: ...}, 'arch', 'epoch',
    'optimizer'}, in the legacy (non-zip) torch format."""
    torch.manual_seed(7)
    net = ResNet3d()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm3d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    state = {k: v for k, v in net.state_dict().items() if with_batch_counters or "num_batches" not in k}
    optimizer = {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": [0, 1]}]}
    checkpoint = {"state_dict": {f"module.{k}": v for k, v in state.items()}, "arch": "resnet-34", "epoch": 200,
                  "optimizer": optimizer}
    torch.save(checkpoint, path, _use_new_zipfile_serialization=False)
    return net.state_dict()


@pytest.mark.parametrize("with_batch_counters", [True, False])
def test_r3d34_loads_a_file_in_the_official_layout_strictly(tmp_path, with_batch_counters):
    path = tmp_path / "resnet-34-kinetics.pth"
    expected = _official_checkpoint(path, with_batch_counters)
    extractor = create_extractor("r3d34", {"weights_path": str(path)}, device="cpu")
    loaded = extractor.net.state_dict()
    assert loaded.keys() == expected.keys()
    for key, value in expected.items():
        if "num_batches" not in key:
            torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)
    assert len(extractor.weights_sha256()) == 64  # unverified spec: the file's own sha256


def test_r3d34_checkpoint_needing_pickle_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "resnet-34-kinetics.pth"
    torch.save({"state_dict": ResNet3d().state_dict(), "args": Path("/somewhere")}, path)
    with pytest.raises(CheckpointError, match="cannot read weights"):
        create_extractor("r3d34", {"weights_path": str(path)}, device="cpu").net  # noqa: B018


def test_r3d34_missing_weights_offline_names_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv("AVH_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("AVH_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("AVH_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError, match="resnet-34-kinetics.pth.*drive.google.com"):
        create_extractor("r3d34").net  # noqa: B018


def test_sha256_prefix_check(tmp_path):
    from avhighlights.extractors.visual import check_sha256_prefix
    from avhighlights.extractors.weights import file_sha256

    path = tmp_path / "weights.pth"
    path.write_bytes(b"not really weights")
    assert check_sha256_prefix(path, file_sha256(path)[:8], "https://example.org/w") == path
    with pytest.raises(WeightsHashError, match="does not start with the published prefix"):
        check_sha256_prefix(path, "00000000", "https://example.org/w")


def test_cover_size_and_center_crop_keep_the_middle():
    from fractions import Fraction

    from avhighlights.core.types import VideoInfo
    from avhighlights.extractors.visual import center_crop, cover_size

    info = VideoInfo(path=Path("x.mp4"), sha256="0" * 64, duration_s=1.0, fps=Fraction(25), variable_frame_rate=False,
                     width=800, height=332, rotation_deg=0, video_codec="vp8", has_audio=False)
    assert cover_size(info, 249) == (249, 600)
    frames = np.zeros((1, 249, 600, 3), np.uint8)
    frames[:, :, 175:425] = 255  # the central 250 columns
    crop = center_crop(frames, 224)
    assert crop.shape == (1, 224, 224, 3) and crop.min() == 255


# ------------------------------------------------------------------------------------------------ swin weights
def _microsoft_layout(timm_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The original Swin release layout: patch merging at the end of stage i (timm: start of stage i + 1),
    classifier `head.*`, plus the relative_position_index / attn_mask buffers timm does not persist."""
    def rename(key: str) -> str:
        key = re.sub(r"layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) - 1}.downsample", key)
        return key.replace("head.fc.", "head.")

    state = {rename(k): v for k, v in timm_state.items()}
    state["layers.0.blocks.0.attn.relative_position_index"] = torch.zeros(49, 49, dtype=torch.long)
    state["layers.0.blocks.0.attn_mask"] = torch.zeros(4, 49, 49)
    return state


@pytest.mark.parametrize("layout", ["timm", "microsoft"])
def test_swin_loads_checkpoint_files_and_drops_the_classifier(tmp_path, layout):
    import timm

    arch = {"embed_dim": 16, "depths": (1, 1, 1, 1), "num_heads": (1, 1, 1, 1), "img_size": 56}
    reference = timm.create_model("swin_base_patch4_window7_224", pretrained=False, num_classes=1000, **arch).eval()
    state = reference.state_dict() if layout == "timm" else _microsoft_layout(reference.state_dict())
    path = tmp_path / "swin_base_patch4_window7_224_22kto1k.pth"
    torch.save({"model": state}, path)
    extractor = create_extractor("swin", {**TINY_SWIN, "weights_path": str(path)}, device="cpu")
    x = torch.randn(2, 3, 56, 56)
    with torch.inference_mode():
        expected = reference.forward_head(reference.forward_features(x), pre_logits=True)  # (2, 128)
        torch.testing.assert_close(extractor.net(x), expected)
    assert extractor.dim == 128  # embed_dim * 8


def test_swin_unknown_variant_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown swin variant"):
        create_extractor("swin", {"variant": "swin_huge"})


# ------------------------------------------------------------------------------------------------ PCA recipe
def test_fit_pca_matches_the_covariance_eigendecomposition():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((200, 6)) @ rng.standard_normal((6, 6))  # (N, D) correlated
    params = fit_pca(x, 3)
    eigvals, eigvecs = np.linalg.eigh(np.cov(x, rowvar=False))  # ascending
    np.testing.assert_allclose(params.eigenvalues, eigvals[::-1][:3], rtol=1e-4)
    np.testing.assert_allclose(np.abs(params.components.T @ eigvecs[:, ::-1][:, :3]), np.eye(3), atol=1e-4)
    np.testing.assert_allclose(params.mean, x.mean(axis=0), rtol=1e-5, atol=1e-6)
    whitened = apply_pca(x.astype(np.float32), params)  # (N, 3): unit variance, uncorrelated
    np.testing.assert_allclose(np.cov(whitened, rowvar=False), np.eye(3), atol=1e-3)


def test_apply_pca_is_the_youtube8m_formula():
    rng = np.random.default_rng(2)
    params = PcaParams(rng.standard_normal(4).astype(np.float32), rng.standard_normal((4, 2)).astype(np.float32),
                       np.array([2.0, 0.5], np.float32))
    x = rng.standard_normal((3, 4)).astype(np.float32)
    expected = (x - params.mean) @ params.components / np.sqrt(params.eigenvalues + 1e-4)
    np.testing.assert_allclose(apply_pca(x, params), expected, rtol=1e-5, atol=1e-6)


def test_quantise_round_trip():
    x = np.array([-3.0, -2.0, -1.0, 0.0, 0.5, 1.99, 2.0, 7.0], np.float32)
    codes = quantize(x)
    assert codes.dtype == np.uint8 and codes.tolist() == [0, 0, 64, 128, 159, 254, 255, 255]
    levels = codes.astype(np.float64)
    np.testing.assert_allclose(dequantize(codes, offset=0.0), levels * 4 / 255 - 2, atol=1e-6)
    np.testing.assert_allclose(dequantize(codes), levels * 4 / 255 - 2 + 4 / 512, atol=1e-6)  # youtube-8m readers
    inside = np.clip(x, -2, 2)
    assert np.abs(dequantize(codes, offset=0.0) - inside).max() <= 2 / 255 + 1e-6


def test_pca_artifact_round_trip_and_bad_files(tmp_path):
    params = fit_pca(np.random.default_rng(3).standard_normal((10, 5)), 2)
    loaded = load_pca(save_pca(params, tmp_path / "p.npz"))
    for key in ("mean", "components", "eigenvalues"):
        np.testing.assert_array_equal(getattr(loaded, key), getattr(params, key))
    np.savez(tmp_path / "bad.npz", mean=np.zeros(3))
    with pytest.raises(CheckpointError, match="not a PCA artifact"):
        load_pca(tmp_path / "bad.npz")
    with pytest.raises(CheckpointError, match="inconsistent PCA shapes"):
        PcaParams(np.zeros(3, np.float32), np.zeros((4, 2), np.float32), np.zeros(2, np.float32))
    with pytest.raises(ConfigError, match="cannot fit"):
        fit_pca(np.zeros((3, 5)), 4)


def test_youtube8m_files_convert_like_feature_extractor_py(tmp_path):
    rng = np.random.default_rng(4)
    mean, eig, matrix = rng.standard_normal((6, 1)), np.abs(rng.standard_normal((6, 1))), rng.standard_normal((6, 6))
    for name, array in (("mean", mean), ("eigenvals", eig), ("pca_matrix", matrix)):
        np.save(tmp_path / f"{name}.npy", array)
    params = from_youtube8m(tmp_path, n_components=4)
    x = rng.standard_normal(6)
    expected = (x - mean[:, 0]).dot(matrix.T[:, :4]) / np.sqrt(eig[:4, 0] + 1e-4)
    np.testing.assert_allclose(apply_pca(x[None].astype(np.float32), params)[0], expected, rtol=1e-4, atol=1e-5)


def test_inception_pca_requires_a_pca_file():
    with pytest.raises(ConfigError, match="needs pca_path"):
        create_extractor("inception_v3_pca", {"random_init": True}).dim  # noqa: B018


def test_inception_pca_quantised_rows_sit_on_the_8bit_grid(scenes_fine, pca_file):
    overrides = tiny_overrides("inception_v3_pca", pca_file) | {"quantize": True, "dequant_offset": 0.0}
    values = _extract(create_extractor("inception_v3_pca", overrides, device="cpu"), scenes_fine).values
    codes = (values + 2) * 255 / 4
    np.testing.assert_allclose(codes, np.round(codes), atol=1e-3)
    assert values.min() >= -2 and values.max() <= 2


# ------------------------------------------------------------------------------------------------ contract
@pytest.mark.parametrize("name", VISUAL)
def test_whole_second_changes_land_on_their_rows(name, scenes_1s, pca_file):
    extractor = create_extractor(name, tiny_overrides(name, pca_file), device="cpu")
    track = _extract(extractor, scenes_1s)
    assert track.values.shape == (6, extractor.dim) and extractor.modality == "visual"
    assert extractor.hop_s == 1.0 and np.isfinite(track.values).all()
    np.testing.assert_allclose(track.spans.start_s, np.arange(6.0))
    assert change_rows(track.values) == [2, 4]


@pytest.mark.parametrize("name", ["mobilenet_v1_025", "swin"])
def test_five_fps_rows_change_at_their_fifth_of_a_second(name, scenes_fine):
    extractor = create_extractor(name, tiny_overrides(name) | {"fps": 5.0}, device="cpu")
    track = _extract(extractor, scenes_fine)
    assert extractor.hop_s == pytest.approx(0.2) and track.values.shape == (15, extractor.dim)
    np.testing.assert_allclose(track.spans.start_s, 0.2 * np.arange(15))
    assert change_rows(track.values) == [7, 11]  # colour changes at 1.4 s and 2.2 s


@pytest.mark.parametrize("name", ["r3d34", "r3d18_tv"])
def test_clips_are_the_first_frames_of_each_second(name, scenes_fine):
    """Red until 1.4 s, lime until 2.2 s: the first 4 frames of second 1 (1.00-1.12 s) are all red and those of
    second 2 (2.00-2.12 s) all lime, so rows 0 and 1 are equal and only row 2 changes."""
    track = _extract(create_extractor(name, tiny_overrides(name), device="cpu"), scenes_fine)
    assert change_rows(track.values) == [2]


def test_swin_base_defaults_are_the_rasl_encoder():
    extractor = create_extractor("swin", {"random_init": True, "fps": 5.0})
    assert extractor.dim == 1024 and extractor.hop_s == pytest.approx(0.2)


OUTPUT_CHANGES = {"mobilenet_v1_025": {"image_size": 96}, "inception_v3_pool": {"fps": 2.0},
                  "inception_v3_pca": {"quantize": True}, "r3d34": {"clip_frames": 8}, "r3d18_tv": {"crop_size": 30},
                  "swin": {"fps": 5.0}}


@pytest.mark.parametrize("name", VISUAL)
def test_identity_follows_config_and_weights(name, pca_file, tmp_path):
    base = tiny_overrides(name, pca_file)
    first = create_extractor(name, base)
    assert first.identity_hash() == create_extractor(name, base).identity_hash()
    assert first.weights_sha256() == "random-init:0"
    assert create_extractor(name, base | {"seed": 1}).identity_hash() != first.identity_hash()
    assert create_extractor(name, base | OUTPUT_CHANGES[name]).identity_hash() != first.identity_hash()
    assert create_extractor(name, base | {"batch_size": 3}).identity_hash() == first.identity_hash()  # runtime only


def test_inception_pca_identity_includes_the_pca_file_hash(tmp_path):
    a = save_pca(fit_pca(np.random.default_rng(5).standard_normal((20, 2048)), 4), tmp_path / "a.npz")
    b = save_pca(fit_pca(np.random.default_rng(6).standard_normal((20, 2048)), 4), tmp_path / "b.npz")
    first = create_extractor("inception_v3_pca", {"random_init": True, "pca_path": str(a)})
    identity = first.identity()
    b.replace(a)  # same path, other content
    second = create_extractor("inception_v3_pca", {"random_init": True, "pca_path": str(a)})
    assert identity["pca_sha256"] != second.identity()["pca_sha256"]
    assert first.dim == 4


def test_registered_visual_extractors():
    for name in VISUAL:
        assert name in EXTRACTORS and EXTRACTORS.get(name).modality == "visual"


@pytest.mark.parametrize("name", ["mobilenet_v1_025", "r3d34"])
def test_extract_features_through_the_store_hits_without_decoding(name, scenes_1s, tmp_path):
    from avhighlights.extractors.store import FeatureStore
    from avhighlights.pipeline.extract import ExtractionStats, extract_features

    info = probe(scenes_1s)
    opened = []

    def factory(i):
        opened.append(i)
        return open_media(i)

    store = FeatureStore(tmp_path / "store")
    extractor = create_extractor(name, tiny_overrides(name), device="cpu")
    first_stats, second_stats = ExtractionStats(), ExtractionStats()
    first = extract_features(info, [extractor], store, media_factory=factory, stats=first_stats)
    second = extract_features(info, [extractor], store, media_factory=factory, stats=second_stats)
    assert first_stats.misses == [name] and second_stats.hits == [name] and len(opened) == 1
    np.testing.assert_array_equal(first[name].values, second[name].values)
    assert second[name].dim == extractor.dim


# ------------------------------------------------------------------------------------------------ pca CLI
def test_pca_fit_cli_writes_a_usable_artifact(scenes_1s, scenes_fine, tmp_path):
    from avhighlights.cli.main import main

    videos = tmp_path / "videos"
    videos.mkdir()
    for source in (scenes_1s, scenes_fine):
        (videos / source.name).symlink_to(source)
    out = tmp_path / "pca.npz"
    code = main(["pca", "fit", "--videos", str(videos), "--out", str(out), "--n-components", "3",
                 "--store", str(tmp_path / "store"), "--set", "random_init=true", "--set", "image_size=75"])
    assert code == 0
    params = load_pca(out)
    assert params.components.shape == (2048, 3) and params.eigenvalues.shape == (3,)
    assert np.all(np.diff(params.eigenvalues) <= 0)
    extractor = create_extractor("inception_v3_pca", {"random_init": True, "image_size": 75, "pca_path": str(out)})
    assert _extract(extractor, scenes_fine).values.shape == (3, 3)


def test_pca_fit_cli_rejects_an_empty_folder(tmp_path):
    from avhighlights.cli.main import main

    assert main(["pca", "fit", "--videos", str(tmp_path), "--out", str(tmp_path / "p.npz")]) == 2
