"""File names that look like ffmpeg/ffprobe options or protocol URLs are opened as plain files (issue #16, case 2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from avhighlights.cli.main import main
from avhighlights.pipeline import cuts
from avhighlights.pipeline.ffargs import safe_media_arg
from avhighlights.pipeline.probe import probe

# `-dash.mp4`: "Missing argument for option"; `-report`: ffprobe writes a log into cwd; `-version`: prints
# the version instead of JSON; `concat:x.mp4`: libavformat would open it with the concat protocol.
TRICKY_NAMES = ("-dash.mp4", "-report", "-version", "concat:x.mp4")


@pytest.fixture(scope="module")
def tricky_folder(tmp_path_factory) -> Path:
    """A folder holding one tiny valid video under each tricky name, and nothing else."""
    from avhighlights.pipeline.synth import SyntheticSpec, make_synthetic_video

    source = make_synthetic_video(tmp_path_factory.mktemp("src") / "tiny.mp4",
                                  SyntheticSpec(duration_s=4.0, width=160, height=120, scene_len_s=2.0,
                                                event_times_s=(1.0,), event_len_s=1.0))
    folder = tmp_path_factory.mktemp("tricky")
    for name in TRICKY_NAMES:
        shutil.copyfile(source, folder / name)
    return folder


def test_safe_media_arg_is_absolute_and_keeps_the_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    arg = safe_media_arg("-report")
    assert arg == str(tmp_path / "-report") and arg.startswith("/")
    assert safe_media_arg(Path("concat:x.mp4")) == str(tmp_path / "concat:x.mp4")


def test_every_ffmpeg_command_passes_paths_as_absolute(tricky_folder: Path, monkeypatch):
    monkeypatch.chdir(tricky_folder)
    info = probe("-report")
    commands = [cuts.clip_command(info, 0.0, 1.0, stream_copy=True), cuts.reel_command(info, Path("-graph")),
                cuts.concat_copy_command(Path("-list"))]
    for cmd in commands:
        inputs = [cmd[i + 1] for i, arg in enumerate(cmd) if arg in ("-i", "-filter_complex_script")]
        assert inputs and all(Path(p).is_absolute() for p in inputs), cmd


@pytest.mark.parametrize("flags, names", [(["--no-clips"], TRICKY_NAMES), (["--stream-copy"], ("-version",))],
                         ids=["re-encoded-reel", "stream-copy-clips-and-reel"])
def test_score_cli_accepts_option_like_file_names(tricky_folder: Path, tmp_path, monkeypatch, flags: list[str],
                                                  names: tuple[str, ...]):
    monkeypatch.chdir(tricky_folder)
    out = tmp_path / "out"
    code = main(["score", "--method", "loudness", "--out", str(out), "--no-cache", "--progress", "none",
                 "--top-ratio", "0.5", "--min-clip-s", "1", *flags, "--", *names])
    assert code == 0
    assert sorted(p.name for p in tricky_folder.iterdir()) == sorted(TRICKY_NAMES)  # no ffprobe-*.log
    for name in names:
        folder = out / Path(name).stem
        doc = json.loads((folder / "highlights.json").read_text())
        assert Path(doc["video"]["path"]).name == name
        assert doc["clips"] and all((folder / c["path"]).stat().st_size > 0 for c in doc["clips"] if c["path"])
        assert all(c["path"] for c in doc["clips"]) == ("--no-clips" not in flags)
        assert (folder / doc["reel"]).stat().st_size > 0


def test_info_cli_probes_option_like_file_names_without_stray_files(tricky_folder: Path, monkeypatch, capsys):
    monkeypatch.chdir(tricky_folder)
    assert main(["info", "--json", "--", *TRICKY_NAMES]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [Path(d["path"]).name for d in lines] == list(TRICKY_NAMES)
    assert all(d["duration_s"] == pytest.approx(4.0, abs=0.1) and d["width"] == 160 for d in lines)
    assert sorted(p.name for p in tricky_folder.iterdir()) == sorted(TRICKY_NAMES)
