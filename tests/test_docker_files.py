"""docker/: the compose file, the Dockerfiles and the entrypoint, checked without a Docker engine."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILES = (DOCKER / "Dockerfile.cpu", DOCKER / "Dockerfile.cuda")
ENTRYPOINT = DOCKER / "entrypoint.sh"
REQUIRED_SERVICES = {"postgres", "prefect-server", "worker", "watcher"}
REQUIRED_VOLUMES = {"watch", "feature-store", "outputs", "quarantine"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _named_volumes(service: dict) -> set[str]:
    """Named volumes a service mounts (bind mounts such as ./x:/y or /x:/y are not names)."""
    names = set()
    for item in service.get("volumes", []):
        source = item.split(":")[0] if isinstance(item, str) else item.get("source", "")
        if source and not source.startswith((".", "/", "~", "$")):
            names.add(source)
    return names


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    return dict(item.split("=", 1) for item in env) if isinstance(env, list) else dict(env)


def test_compose_has_the_services_and_volumes(compose):
    assert REQUIRED_SERVICES <= set(compose["services"])
    declared = set(compose.get("volumes") or {})
    assert REQUIRED_VOLUMES <= declared
    used = set().union(*(_named_volumes(svc) for svc in compose["services"].values()))
    assert used <= declared, f"undeclared volumes: {used - declared}"
    assert REQUIRED_VOLUMES <= used, f"declared but never mounted: {REQUIRED_VOLUMES - used}"
    assert {"watch", "feature-store", "outputs"} <= _named_volumes(compose["services"]["worker"])
    assert {"watch", "quarantine", "outputs"} <= _named_volumes(compose["services"]["watcher"])


def test_every_service_is_healthchecked_and_dependencies_wait_for_health(compose):
    services = compose["services"]
    for name, service in services.items():
        assert "test" in service.get("healthcheck", {}), f"{name} has no healthcheck"
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert rule["condition"] in ("service_healthy", "service_started", "service_completed_successfully")
    assert services["prefect-server"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["worker"]["depends_on"]["prefect-server"]["condition"] == "service_healthy"
    assert services["watcher"]["depends_on"]["prefect-server"]["condition"] == "service_healthy"


def test_prefect_server_uses_postgres(compose):
    server, postgres = compose["services"]["prefect-server"], compose["services"]["postgres"]
    command = " ".join(server["command"])
    assert "prefect server start" in command and "--host 0.0.0.0" in command
    url = urlparse(re.sub(r"\$\{[^}]*\}", "PASSWORD", _env(server)["PREFECT_API_DATABASE_CONNECTION_URL"]))
    pg_env = _env(postgres)
    assert url.scheme == "postgresql+asyncpg"
    assert url.hostname == "postgres" and url.port == 5432
    assert url.username == pg_env["POSTGRES_USER"] and url.path == "/" + pg_env["POSTGRES_DB"]
    assert server["image"].startswith("prefecthq/prefect:3.8.8-python3.11")


REQUIRED_PASSWORD = "${POSTGRES_PASSWORD:?"


def _published_ports(service: dict) -> list[str]:
    """Every `ports` entry as text: "HOST_IP:HOST:CONTAINER" short syntax, or the long syntax's host_ip:published."""
    ports = []
    for item in service.get("ports", []):
        if isinstance(item, dict):
            ports.append(f"{item.get('host_ip', '')}:{item.get('published', '')}:{item.get('target', '')}")
        else:
            ports.append(str(item))
    return ports


def test_published_ports_are_on_loopback_and_the_password_has_no_default(compose):
    """#16 item 5: nothing is published on every interface, and no service falls back to a known password."""
    published = {name: _published_ports(svc) for name, svc in compose["services"].items()}
    assert published["prefect-server"], "the Prefect UI/API should be published (on loopback)"
    for name, ports in published.items():
        for port in ports:
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond this host"
    for name, service in compose["services"].items():
        for variable, value in _env(service).items():
            assert "${POSTGRES_PASSWORD:-" not in str(value), f"{name}: {variable} defaults the password"
            assert "${POSTGRES_PASSWORD-" not in str(value), f"{name}: {variable} defaults the password"
    assert _env(compose["services"]["postgres"])["POSTGRES_PASSWORD"].startswith(REQUIRED_PASSWORD)
    database_url = _env(compose["services"]["prefect-server"])["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert f":{REQUIRED_PASSWORD}" in database_url and "prefect:prefect@" not in database_url


def test_the_worker_health_endpoint_listens_on_loopback(compose):
    """`prefect worker start --with-healthcheck` binds 0.0.0.0:8080 by default; the entrypoint defaults it to
    loopback (where the healthcheck asks), and an explicit setting still wins."""
    show = ("python3", "-c", "import os; print(os.environ['PREFECT_WORKER_WEBSERVER_HOST'])")
    assert _entrypoint(*show).stdout.strip() == "127.0.0.1"
    assert _entrypoint(*show, PREFECT_WORKER_WEBSERVER_HOST="10.0.0.5").stdout.strip() == "10.0.0.5"
    for name in ("worker", "worker-gpu"):
        assert "http://127.0.0.1:8080/health" in " ".join(compose["services"][name]["healthcheck"]["test"])


def test_clients_point_at_the_server_and_the_pool_matches_prefect_yaml(compose):
    pool = yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"][0]["work_pool"]["name"]
    for name in ("worker", "watcher"):
        env = _env(compose["services"][name])
        api = urlparse(env["PREFECT_API_URL"])
        assert api.hostname == "prefect-server" and api.port == 4200 and api.path == "/api"
        assert env["AVH_WORK_POOL"] == pool
        assert env["AVH_FEATURE_STORE"] == "/data/feature-store"
    assert f'POOL="${{AVH_WORK_POOL:-{pool}}}"' in ENTRYPOINT.read_text()


def test_entrypoint_reads_every_avh_variable_the_compose_file_sets(compose):
    script = ENTRYPOINT.read_text()
    for name in ("worker", "watcher"):
        for variable in _env(compose["services"][name]):
            if variable.startswith("AVH_") and variable != "AVH_FEATURE_STORE":  # read by the package itself
                assert f"${{{variable}" in script, f"{variable} is set for {name} but never read"
    assert "AVH_FEATURE_STORE" in (REPO / "avhighlights" / "extractors" / "store.py").read_text()


def test_build_contexts_and_dockerfiles_exist(compose):
    built = {name: svc["build"] for name, svc in compose["services"].items() if "build" in svc}
    assert {"worker", "watcher"} <= set(built)
    for name, build in built.items():
        context = (COMPOSE.parent / build["context"]).resolve()
        assert context == REPO, f"{name}: context {context}"
        assert (context / build["dockerfile"]).is_file()
        assert compose["services"][name]["image"].startswith("avhighlights:")


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def _dockerignored() -> set[str]:
    return {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
            if line.strip() and not line.startswith("#")}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_copy_source_exists_and_is_not_ignored(dockerfile):
    copies = [args for op, args in _instructions(dockerfile) if op == "COPY"]
    assert copies
    ignored = _dockerignored()
    for args in copies:
        sources = [word for word in args.split() if not word.startswith("--")][:-1]
        for source in sources:
            assert (REPO / source).exists(), f"{dockerfile.name}: COPY source {source} missing"
            assert source not in ignored and source.split("/")[0] not in ignored, f"{source} is in .dockerignore"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_images_install_ffmpeg_torch_and_flows_and_run_as_a_user(dockerfile):
    steps = _instructions(dockerfile)
    runs = " ".join(args for op, args in steps if op == "RUN")
    assert "ffmpeg" in runs and 'pip install ".[flows]"' in runs
    assert re.search(r"torch==[\d.]+ torchvision==[\d.]+ torchaudio==[\d.]+", runs)
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert [args for op, args in steps if op == "ENTRYPOINT"] == ['["avh-entrypoint"]']
    pins = dict(re.findall(r'"(torch|torchvision|torchaudio)==([\d.]+)"', (REPO / "pyproject.toml").read_text()))
    for package, version in pins.items():
        assert f"{package}=={version}" in runs, f"{dockerfile.name}: {package} not pinned as in pyproject.toml"


def test_base_images_and_wheel_indexes():
    cpu, cuda = (_instructions(path) for path in DOCKERFILES)
    assert cpu[0] == ("FROM", "python:3.11-slim")
    assert "download.pytorch.org/whl/cpu" in " ".join(args for _, args in cpu)
    assert re.fullmatch(r"nvidia/cuda:12\.\d+\.\d+-(cudnn-)?runtime-ubuntu\d\d\.04", cuda[0][1])
    assert re.search(r"download\.pytorch\.org/whl/cu12\d", " ".join(args for _, args in cuda))
    assert "python3.11" in " ".join(args for _, args in cuda)


def test_entrypoint_is_executable_bash_that_parses():
    assert ENTRYPOINT.read_text().startswith("#!/usr/bin/env bash\n")
    assert os.access(ENTRYPOINT, os.X_OK)
    subprocess.run(["bash", "-n", str(ENTRYPOINT)], check=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _entrypoint(*args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    return subprocess.run([str(ENTRYPOINT), *args], capture_output=True, text=True, timeout=60,
                          env={**environ, "AVH_PYTHON": "python3", **env})


def test_entrypoint_runs_other_commands_as_given():
    done = _entrypoint("python3", "-c", "print('passed through')")
    assert done.returncode == 0 and done.stdout.strip() == "passed through"


@pytest.mark.parametrize("role", ["worker", "watcher"])
def test_entrypoint_roles_need_a_reachable_server(role):
    missing = _entrypoint(role)
    assert missing.returncode != 0 and "PREFECT_API_URL" in missing.stderr
    unreachable = _entrypoint(role, PREFECT_API_URL=f"http://127.0.0.1:{_free_port()}/api", AVH_SERVER_WAIT_S="1")
    assert unreachable.returncode == 1 and "no Prefect server" in unreachable.stderr


def _compose_command(tmp_path: Path) -> list[str] | None:
    """`docker compose` (v2), else `docker-compose` (v1, on a copy without the top-level `name` it predates)."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose", "-f", str(COMPOSE)]
    legacy = shutil.which("docker-compose")
    if legacy is None:
        return None
    copy = tmp_path / "compose.yaml"
    copy.write_text(yaml.safe_dump({k: v for k, v in yaml.safe_load(COMPOSE.read_text()).items() if k != "name"}))
    return [legacy, "-f", str(copy), "--project-directory", str(DOCKER)]


def test_docker_compose_config_validates_when_available(tmp_path):
    command = _compose_command(tmp_path)
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed; validated structurally above")
    without = subprocess.run([*command, "config"], capture_output=True, text=True, timeout=120,
                             env={k: v for k, v in os.environ.items() if k != "POSTGRES_PASSWORD"}, cwd=tmp_path)
    if not (DOCKER / ".env").exists():  # a developer's docker/.env would supply it
        assert without.returncode != 0 and "POSTGRES_PASSWORD" in without.stderr  # required, no default
    done = subprocess.run([*command, "config"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "POSTGRES_PASSWORD": "from-the-test"})
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)
    assert REQUIRED_SERVICES <= set(resolved["services"])
    assert Path(resolved["services"]["worker"]["build"]["context"]).resolve() == REPO
