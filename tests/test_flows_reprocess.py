"""reprocess-dataset on a real local server: resumable, one bad video does not fail the batch,
evaluation from label files, a summary table artifact; a local 2-process Dask cluster; and the
feature store on an S3-compatible endpoint (moto's server on loopback) through extract-and-score."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytest.importorskip("prefect")

from avhighlights.extractors.store import FeatureStore  # noqa: E402


def remux(src: Path, dst: Path, tag: str) -> Path:
    """A copy of `src` with a metadata tag: same media, different content hash."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-map", "0", "-c", "copy",
                    "-metadata", f"comment={tag}", str(dst)], check=True)
    return dst


@pytest.fixture
def dataset(short_video, tmp_path) -> Path:
    root = tmp_path / "dataset"
    remux(short_video, root / "a.mp4", "a")
    remux(short_video, root / "sub" / "b.mp4", "b")
    (root / "a.labels.json").write_text(json.dumps({"spans": [[1.0, 2.0], [4.0, 5.0]]}))  # its bursts
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    return root


def test_reprocess_is_resumable_isolates_failures_and_evaluates(prefect_server, dataset, tmp_path):
    from avhighlights.flows.reprocess import SUMMARY_NAME, reprocess_dataset

    out, store = tmp_path / "out", str(tmp_path / "store")
    config = {"store": store, "render": {"stream_copy": True}}
    first = reprocess_dataset(str(dataset), str(out), config)
    rows = {r["video"]: r for r in first["videos"]}
    assert (first["done"], first["failed"], first["skipped"]) == (2, 1, 0)
    assert rows["broken.mp4"]["status"] == "failed" and "broken.mp4" in rows["broken.mp4"]["error"]
    assert rows["a.mp4"]["computed_features"] == "loudness" and 0.0 <= rows["a.mp4"]["map50"] <= 1.0
    assert "map50" not in rows["sub/b.mp4"] and set(first["mean_metrics"]) >= {"map50", "rho"}
    assert any((out / "sub" / "b").glob("clip_*.mp4")) and (out / "a" / "highlights.json").is_file()
    assert json.loads((out / SUMMARY_NAME).read_text())["failed"] == 1
    second = reprocess_dataset(str(dataset), str(out), config)
    again = {r["video"]: r for r in second["videos"]}
    assert (second["done"], second["skipped"], second["failed"]) == (0, 2, 1)
    assert again["a.mp4"]["map50"] == rows["a.mp4"]["map50"] and again["a.mp4"]["computed_features"] == ""
    assert len(list(FeatureStore(store).keys())) == 2


def test_reprocess_fits_an_unsupervised_method_once_for_the_batch(prefect_server, dataset, tmp_path, monkeypatch):
    """recurrence without a checkpoint: one fit on the readable videos (the broken one is skipped there and fails
    alone), every video scored with it; a second pass reuses the fit and skips the finished videos."""
    from fit_fixtures import BINDING, TINY_RECURRENCE

    from avhighlights.flows.reprocess import reprocess_dataset

    monkeypatch.setenv("AVH_CACHE_DIR", str(tmp_path / "cache"))
    config = {"scorer": {"method": "recurrence", "binding_overrides": BINDING, "method_overrides": TINY_RECURRENCE},
              "store": str(tmp_path / "store"), "render": {"stream_copy": True}}
    first = reprocess_dataset(str(dataset), str(tmp_path / "out"), config)
    assert (first["done"], first["failed"]) == (2, 1) and first["fit"]["n_fitted"] == 2
    assert first["checkpoint"] == first["fit"]["checkpoint"] and first["fit"]["status"] == "fitted"
    doc = json.loads((tmp_path / "out" / "a" / "highlights.json").read_text())
    assert doc["method"] == "recurrence" and doc["checkpoint"] == first["checkpoint"]
    second = reprocess_dataset(str(dataset), str(tmp_path / "out"), config)
    assert second["fit"]["status"] == "cached" and (second["skipped"], second["failed"]) == (2, 1)


def test_reprocess_changed_selection_recomputes_results_not_features(prefect_server, dataset, tmp_path):
    from avhighlights.flows.reprocess import reprocess_dataset

    manifest = tmp_path / "list.txt"
    manifest.write_text(f"# two of the videos\n{dataset / 'a.mp4'}\n{dataset / 'sub' / 'b.mp4'}\n")
    out, store = tmp_path / "out", str(tmp_path / "store")
    config = {"store": store, "render": {"stream_copy": True}}
    first = reprocess_dataset(str(manifest), str(out), config, evaluate=False)
    assert first["done"] == 2 and first["mean_metrics"] == {}
    second = reprocess_dataset(str(manifest), str(out), {**config, "selection": {"top_ratio": 0.2}}, evaluate=False)
    assert second["done"] == 2 and all(r["computed_features"] == "" for r in second["videos"])


@pytest.mark.slow  # ~100 s on the shared 2-core CPU (two worker processes import torch)
def test_reprocess_on_local_two_worker_dask_cluster(prefect_server, dataset, tmp_path):
    from avhighlights.flows.reprocess import reprocess_dataset

    shutil.move(dataset / "broken.mp4", tmp_path / "broken.mp4")
    remux(dataset / "a.mp4", dataset / "c.mp4", "c")
    summary = reprocess_dataset(str(dataset), str(tmp_path / "out"),
                                {"store": str(tmp_path / "store"), "render": {"stream_copy": True}}, dask_workers=2)
    assert summary["done"] == 3 and summary["failed"] == 0
    assert len({r["worker"] for r in summary["videos"]}) == 2  # both Dask worker processes took videos


def test_feature_store_on_s3_through_the_flow(prefect_server, short_video, tmp_path, monkeypatch):
    s3fs = pytest.importorskip("s3fs")
    from moto.server import ThreadedMotoServer

    from avhighlights.flows.extract_and_score import extract_and_score

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://{host}:{port}"}.items():
            monkeypatch.setenv(name, value)
        s3fs.S3FileSystem.clear_instance_cache()
        s3fs.S3FileSystem().mkdir("features-bucket")
        store = "s3://features-bucket/avh/features"
        first = extract_and_score(str(short_video), {"store": store}, out_dir=str(tmp_path / "out"))
        second = extract_and_score(str(short_video), {"store": store}, out_dir=str(tmp_path / "out2"))
        assert first["cache_misses"] == ["loudness"] and second["cache_hits"] == {"loudness": True}
        remote = FeatureStore(store)
        assert list(remote.keys()) == [first["feature_keys"]["loudness"]] and remote.verify().corrupt == []
        assert second["clips"][0]["score"] == first["clips"][0]["score"]
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()


def _listening_sockets(psutil) -> list[tuple[int, str, int]]:
    """(pid, ip, port) of every listening inet socket of this process and its children (Dask nannies and
    workers, the Prefect test server)."""
    me = psutil.Process()
    found = []
    for process in [me, *me.children(recursive=True)]:
        try:
            connections = process.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        found += [(process.pid, c.laddr.ip, c.laddr.port) for c in connections if c.status == psutil.CONN_LISTEN]
    return found


def test_the_local_dask_cluster_and_the_prefect_server_listen_on_loopback_only(prefect_server):
    """#16 item 5: `--dask-workers 1` used to serve the Dask dashboard on 0.0.0.0:8787 while its link said
    127.0.0.1. The cluster is started
    exactly as reprocess starts it (its DaskTaskRunner entered); every listening socket of this process tree
    (scheduler, nanny, worker, and the Prefect server subprocess) must be on 127.0.0.1."""
    psutil = pytest.importorskip("psutil")
    pytest.importorskip("prefect_dask")
    from prefect.settings import get_current_settings

    from avhighlights.flows.reprocess import make_task_runner

    before = _listening_sockets(psutil)
    assert before, "the Prefect test server should be listening"
    with make_task_runner(dask_workers=1) as runner:
        link = urlparse(runner.client.dashboard_link)  # starts the cluster on first use
        assert link.hostname == "127.0.0.1" and link.port != 8787  # a free port: concurrent runs do not collide
        during = _listening_sockets(psutil)
    assert len(during) >= len(before) + 3  # scheduler, nanny and worker
    assert [s for s in during if s[1] != "127.0.0.1"] == []
    settings = get_current_settings()  # what `serve` (runner webserver) and an ephemeral server would bind
    assert settings.runner.server.host in ("localhost", "127.0.0.1") and settings.server.api.host == "127.0.0.1"


def test_reprocess_subcommand_continues_on_error_and_exits_9(prefect_server, dataset, tmp_path, capsys,
                                                             monkeypatch):
    """`avhighlights reprocess`: score's selection and writing options reach the flow; the bad video is a
    failure (file and one-line reason) in the summary, the others are written, and the exit code is 9."""
    from avhighlights.cli.main import main
    from avhighlights.flows.prefect_env import PREFECT_DEFAULTS

    for name, value in PREFECT_DEFAULTS.items():  # what the handler would set, undone after the test
        monkeypatch.setenv(name, value)
    from avhighlights.flows.reprocess import SUMMARY_NAME
    from avhighlights.pipeline.results import read_results

    out = tmp_path / "out"
    code = main(["reprocess", str(dataset), "--out", str(out), "--store", str(tmp_path / "store"), "--top-ratio",
                 "0.3", "--max-total-s", "4", "--pad-s", "0.5", "--no-reel", "--stream-copy", "--progress", "none"])
    assert code == 9
    summary = json.loads((out / SUMMARY_NAME).read_text())
    assert (summary["done"], summary["failed"]) == (2, 1)
    [failure] = summary["failures"]
    assert failure["video"] == "broken.mp4" and failure["file"] == str(dataset / "broken.mp4")
    assert failure["exit_code"] == 3 and "broken.mp4" in failure["error"] and "\n" not in failure["error"]
    for name in ("a", "sub/b"):
        doc = read_results(out / name / "highlights.json")
        assert (doc.selection.top_ratio, doc.selection.max_total_s, doc.selection.pad_s) == (0.3, 4.0, 0.5)
        assert not (out / name / "reel.mp4").exists() and any((out / name).glob("clip_*.mp4"))
    captured = capsys.readouterr()
    assert f"failed: {failure['error']}" in captured.err and json.loads(captured.out)["failed"] == 1
    again = ["reprocess", str(dataset), "--out", str(out), "--store", str(tmp_path / "store"), "--top-ratio", "0.3",
             "--max-total-s", "4", "--pad-s", "0.5", "--stream-copy", "--progress", "none"]
    assert main(again) == 9 and json.loads(capsys.readouterr().out)["done"] == 2  # the reel is asked for now
    assert (out / "a" / "reel.mp4").is_file() and main([*again, "--no-reel"]) == 9
    assert json.loads(capsys.readouterr().out)["skipped"] == 2  # with or without a reel on disk: finished


def test_reprocess_module_exits_3_when_every_video_is_bad_media(prefect_server, tmp_path):
    """`python -m avhighlights reprocess` (a subprocess, as users run it); all videos bad media -> exit 3,
    with one JSON `result` event per video and a `summary` event on stderr in --progress json."""
    import subprocess
    import sys

    root = tmp_path / "bad"
    root.mkdir()
    (root / "x.mp4").write_bytes(b"not a video at all")
    (root / "y.mkv").write_bytes(b"\x1a\x45\xdf\xa3 truncated")
    done = subprocess.run([sys.executable, "-m", "avhighlights", "reprocess", str(root), "--out",
                           str(tmp_path / "out"), "--store", str(tmp_path / "store"), "--no-clips", "--progress",
                           "json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stderr[-2000:]
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{\"event\"")]
    results = [e for e in events if e["event"] == "result"]
    [summary] = [e for e in events if e["event"] == "summary"]
    assert sorted(e["video"] for e in results) == ["x.mp4", "y.mkv"] and all(e["status"] == "failed" for e in results)
    assert summary["failed"] == 2 and {f["exit_code"] for f in summary["failures"]} == {3}


def test_prefect_defaults_fill_only_what_is_unset():
    """The ephemeral server a command may start: no telemetry, a start-up timeout for loaded machines; the
    user's own settings win."""
    from avhighlights.flows.prefect_env import apply_prefect_defaults

    env = {"PREFECT_SERVER_ANALYTICS_ENABLED": "true"}
    applied = apply_prefect_defaults(env)
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "true"
    assert applied == {"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90"} == {
        k: v for k, v in env.items() if k != "PREFECT_SERVER_ANALYTICS_ENABLED"}
    fresh: dict[str, str] = {}
    apply_prefect_defaults(fresh)
    assert fresh["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
