"""The deployment files in infra/ (container image, Kubernetes, systemd) agree with costagent and with each other.

No cluster, container engine or init system is needed: the manifests are read as YAML, the Dockerfile and the
.dockerignore by their own small grammars, the units as INI. The argument vectors they start costagent with are
parsed by costagent's own click commands; the configuration the ConfigMap carries is loaded by ``agent.config``;
the image's HEALTHCHECK command is run against a real local HTTP server. ``systemd-analyze verify`` and
``kubectl kustomize`` run when present (each test is skipped, saying so, when not).
"""

from __future__ import annotations

import configparser
import json
import re
import shlex
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo

import click
import pytest
import yaml
from click.testing import CliRunner

from agent.apply_config import default_state_url
from agent.cli import main
from agent.config import load
from agent.daemon_config import JOBS
from agent.guards import Mode

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
K8S = INFRA / "kubernetes"
SYSTEMD = INFRA / "systemd"
DOCKERFILE = INFRA / "container" / "Dockerfile"
K8S_FILES = sorted(K8S.glob("*.yaml"))
UNITS = sorted(SYSTEMD.glob("costagent*.*"))


# --- readers -----------------------------------------------------------------------------------------------------


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def _object(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for p in K8S_FILES for d in _docs(p) if d.get("kind") == kind
             and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''} objects in infra/kubernetes"
    return found[0]


def _pod(kind: str) -> dict[str, Any]:
    """The pod spec of the Deployment (daemon) or the CronJob (one-shot runs)."""
    spec = _object(kind)["spec"]
    return (spec["jobTemplate"]["spec"] if kind == "CronJob" else spec)["template"]["spec"]


def _container(kind: str) -> dict[str, Any]:
    containers = _pod(kind)["containers"]
    assert len(containers) == 1
    return containers[0]


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def _dockerfile() -> list[list[tuple[str, str]]]:
    """Stages (from each FROM), each a list of (INSTRUCTION, arguments); continuation lines joined as the builder
    joins them (the backslash and what follows it dropped, nothing added; comments and blank lines skipped)."""
    lines, pending = [], ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        joined = re.sub(r"\\[ \t]*$", "", raw)
        if joined != raw:
            pending += joined
            continue
        lines.append(pending + raw)
        pending = ""
    stages: list[list[tuple[str, str]]] = [[]]
    for line in lines:
        word, _, rest = line.strip().partition(" ")
        if word.upper() == "FROM":
            stages.append([])
        stages[-1].append((word.upper(), rest.strip()))
    return stages


def _instructions(stage: list[tuple[str, str]], word: str) -> list[str]:
    return [rest for w, rest in stage if w == word]


def _docker_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    return dict(item.split("=", 1) for rest in _instructions(stage, "ENV") for item in shlex.split(rest))


def _unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file's sections, each key with all its values in order (systemd keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def _environment(service: dict[str, list[str]]) -> dict[str, str]:
    return dict(item.split("=", 1) for line in service.get("Environment", []) for item in shlex.split(line))


def _port(listen: str) -> int:
    return int(listen.rpartition(":")[2])


# --- costagent's command line ------------------------------------------------------------------------------------


def _argv_vectors() -> Iterator[tuple[str, list[str]]]:
    """Every command line a deployment file starts costagent with, and where it is written."""
    runtime = _dockerfile()[-1]
    entrypoint = json.loads(_instructions(runtime, "ENTRYPOINT")[-1])
    yield "Dockerfile ENTRYPOINT + CMD", [*entrypoint, *json.loads(_instructions(runtime, "CMD")[-1])]
    for kind in ("Deployment", "CronJob"):
        container = _container(kind)
        yield f"{kind} args", [*(container.get("command") or entrypoint), *container.get("args", [])]
    for path in UNITS:
        for line in _unit(path).get("Service", {}).get("ExecStart", []):
            yield f"{path.name} ExecStart", shlex.split(line.lstrip("-@:+!"))


ARGVS = list(_argv_vectors())


def test_every_deployment_names_a_costagent_command():
    where = [w for w, _ in ARGVS]
    assert len(ARGVS) == 5, where  # the image, the Deployment, the CronJob, both service units
    assert {argv[1] for _, argv in ARGVS} == {"daemon", "run"}


@pytest.mark.parametrize(("where", "argv"), ARGVS, ids=[w for w, _ in ARGVS])
def test_command_lines_parse_with_costagents_cli(where, argv):
    """Needs the ``daemon`` and ``run`` subcommands; ``--help`` alone would not check the arguments, so the
    subcommand's context is also made (every option and argument converted) without running it."""
    assert PurePosixPath(argv[0]).name == "costagent", where
    args = argv[1:]
    result = CliRunner().invoke(main, [*args, "--help"])
    assert result.exit_code == 0, f"{where}: costagent {' '.join(args)} --help: {result.output}"
    parent = click.Context(main, info_name="costagent")
    command = main.get_command(parent, args[0])
    assert command is not None, f"{where}: no subcommand {args[0]!r}"
    command.make_context(args[0], list(args[1:]), parent=parent)
    if args[0] == "run":
        jobs = [a for a in args[1:] if not a.startswith("-")]
        assert jobs and set(jobs) <= set(JOBS), f"{where}: {jobs} vs {JOBS}"


# --- Kubernetes --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", K8S_FILES, ids=[p.name for p in K8S_FILES])
def test_kubernetes_yaml_parses_and_names_its_objects(path):
    docs = _docs(path)
    assert docs
    for doc in docs:
        assert doc.get("apiVersion") and doc.get("kind"), path.name
        assert doc.get("metadata", {}).get("name"), path.name
        if doc["kind"] not in ("Namespace", "Kustomization"):
            assert doc["metadata"].get("namespace") == "costagent", f"{path.name}: {doc['kind']}"


def test_kustomization_lists_the_daemon_set_and_only_files_that_exist():
    resources = _object("Kustomization")["resources"]
    assert all((K8S / r).is_file() for r in resources), resources
    kinds = {d["kind"] for r in resources for d in _docs(K8S / r)}
    assert {"Namespace", "ServiceAccount", "ConfigMap", "PersistentVolumeClaim", "Deployment", "Service"} <= kinds
    assert "CronJob" not in kinds, "the CronJob is the alternative to the Deployment, not both"
    assert "Secret" not in kinds, "the Secret holds real values: created by the operator, not from the example"


def test_kustomization_image_override_names_the_deployments_image():
    image = _container("Deployment")["image"]
    assert [i["name"] for i in _object("Kustomization")["images"]] == [image.rsplit(":", 1)[0]]
    assert _container("CronJob")["image"] == image


def test_deployment_runs_exactly_one_scheduler():
    spec = _object("Deployment")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    assert _pod("Deployment")["terminationGracePeriodSeconds"] == 60


def test_probes_and_metrics_use_the_port_the_daemon_listens_on():
    container = _container("Deployment")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    listen = _port(_env(container)["COSTAGENT_LISTEN"])
    assert _env(container)["COSTAGENT_LISTEN"].startswith("0.0.0.0:")
    for probe in ("livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == "/healthz"
        assert ports.get(get["port"], get["port"]) == listen, probe
    runtime = _dockerfile()[-1]
    assert [int(p.split("/")[0]) for p in _instructions(runtime, "EXPOSE")] == [listen]
    assert _port(_docker_env(runtime)["COSTAGENT_LISTEN"]) == listen
    annotations = _object("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == listen
    service = _object("Service")["spec"]
    assert service["selector"].items() <= _object("Deployment")["spec"]["template"]["metadata"]["labels"].items()
    assert [ports.get(p["targetPort"], p["targetPort"]) for p in service["ports"]] == [listen]


@pytest.mark.parametrize("kind", ["Deployment", "CronJob"])
def test_pods_run_unprivileged_on_a_read_only_root(kind):
    pod, container = _pod(kind), _container(kind)
    uid = _instructions(_dockerfile()[-1], "USER")[-1].split(":")[0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == int(uid) != 0
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"] and "add" not in security["capabilities"]
    assert (security.get("seccompProfile") or pod["securityContext"]["seccompProfile"]) == {"type": "RuntimeDefault"}
    assert container["resources"]["requests"]["memory"] and container["resources"]["limits"]["memory"]


@pytest.mark.parametrize("kind", ["Deployment", "CronJob"])
def test_pods_can_write_their_state_and_temporary_files(kind):
    """With a read-only root, the state database's folder and /tmp (matplotlib's cache) must be volumes."""
    container = _container(kind)
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    env = {**_docker_env(_dockerfile()[-1]), **_env(container)}
    state = Path(default_state_url({"XDG_STATE_HOME": env["XDG_STATE_HOME"]})[len("sqlite:///"):]).parent
    assert not mounts[str(state)].get("readOnly")
    assert str(state) in _instructions(_dockerfile()[-1], "VOLUME")[-1]
    volumes = {v["name"]: v for v in _pod(kind)["volumes"]}
    claim = volumes[mounts[str(state)]["name"]]["persistentVolumeClaim"]["claimName"]
    assert claim == _object("PersistentVolumeClaim")["metadata"]["name"]
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    assert env["MPLCONFIGDIR"].startswith("/tmp/")


@pytest.mark.parametrize("kind", ["Deployment", "CronJob"])
def test_pods_use_the_config_secret_and_identity_the_manifests_define(kind):
    pod, container = _pod(kind), _container(kind)
    assert pod["serviceAccountName"] == _object("ServiceAccount")["metadata"]["name"]
    config = Path(_env(container)["COSTAGENT_CONFIG"])
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(config.parent))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    configmap = _object("ConfigMap", volume["configMap"]["name"])
    assert config.name in configmap["data"]
    secrets = [e["secretRef"]["name"] for e in container["envFrom"]]
    assert secrets == [_object("Secret")["metadata"]["name"]]


def test_cronjob_runs_weekday_mornings_one_at_a_time():
    cron = _object("CronJob")["spec"]
    assert cron["schedule"] == "0 9 * * 1-5"
    assert cron["concurrencyPolicy"] == "Forbid"
    ZoneInfo(cron["timeZone"])
    assert cron["startingDeadlineSeconds"] > 0
    assert cron["jobTemplate"]["spec"]["backoffLimit"] >= 0
    assert _pod("CronJob")["restartPolicy"] in ("Never", "OnFailure")


def test_configmap_config_loads_in_dry_run_with_secrets_by_reference_only(tmp_path):
    text = _object("ConfigMap")["data"]["costagent.yaml"]
    path = tmp_path / "costagent.yaml"
    path.write_text(text, encoding="utf-8")
    config = load(path, env={})
    assert config.apply.policy.mode is Mode.DRY_RUN
    assert {c.type for c in config.channels} >= {"slack-webhook", "email"}
    referenced = {s.env for c in config.channels for s in c.secrets.values()}
    assert None not in referenced and all(s.file is None for c in config.channels for s in c.secrets.values())
    assert referenced <= set(_object("Secret")["stringData"]), "a channel names a variable the Secret lacks"
    assert config.daemon.listen == _env(_container("Deployment"))["COSTAGENT_LISTEN"]
    assert not re.search(r"hooks\.slack\.com|xox[abp]-|password:\s*\S", text)


SECRET_SHAPES = re.compile(r"hooks\.slack\.com/services/T|xox[abpr]-|AKIA[0-9A-Z]{16}|-----BEGIN|[A-Za-z0-9+/]{40,}")


def test_secret_example_holds_placeholders_only():
    secret = _object("Secret")
    assert "data" not in secret, "base64 values cannot be seen to be placeholders"
    values = secret["stringData"]
    assert values
    for key, value in values.items():
        assert value.startswith("REPLACE-ME"), key
        assert not SECRET_SHAPES.search(value), key
    assert not SECRET_SHAPES.search((K8S / "secret.example.yaml").read_text(encoding="utf-8"))


def test_kustomize_builds_the_daemon_set():
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    out = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(out.stdout) if d]
    assert kinds.count("Deployment") == 1 and "CronJob" not in kinds


# --- the container image -----------------------------------------------------------------------------------------


def test_dockerfile_builds_in_one_stage_and_runs_unprivileged_in_another():
    stages = _dockerfile()
    args = dict(a.split("=", 1) for a in _instructions(stages[0], "ARG") if "=" in a)
    bases = [re.sub(r"\$\{?(\w+)\}?", lambda m: args[m.group(1)], _instructions(s, "FROM")[0]).split()[0]
             for s in stages[1:]]
    assert len(bases) >= 2
    assert all(re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", b) for b in bases), bases
    build, runtime = "\n".join(r for _, r in sum(stages[1:-1], [])), stages[-1]
    assert "[aws,gcp,azure]" in build and "pip wheel" in build
    assert _instructions(runtime, "COPY") and all("--from=" in c for c in _instructions(runtime, "COPY"))
    assert not re.search(r"apt-get install|build-essential|gcc|pip (install|wheel)", "\n".join(
        _instructions(runtime, "RUN")))
    user = _instructions(runtime, "USER")[-1].split(":")[0]
    assert user.isdigit() and int(user) == 10001
    assert json.loads(_instructions(runtime, "ENTRYPOINT")[-1]) == ["costagent"]
    assert json.loads(_instructions(runtime, "CMD")[-1]) == ["daemon"]
    env = _docker_env(runtime)
    assert (env["XDG_STATE_HOME"], env["COSTAGENT_LISTEN"], env["PYTHONUNBUFFERED"]) == ("/var/lib", "0.0.0.0:9464",
                                                                                        "1")
    assert json.loads(_instructions(runtime, "VOLUME")[-1]) == ["/var/lib/costagent"]
    assert any("-o 10001" in r and "/var/lib/costagent" in r for r in _instructions(runtime, "RUN"))


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_healthcheck_command_reports_the_daemons_healthz(status, healthy):
    check = json.loads(_instructions(_dockerfile()[-1], "HEALTHCHECK")[-1].split("CMD", 1)[1])
    assert check[:2] == ["python", "-c"]
    handler = type("Health", (_Health,), {"status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {"COSTAGENT_LISTEN": f"0.0.0.0:{server.server_address[1]}", "PATH": ""}
        done = subprocess.run([sys.executable, *check[1:]], env=env, capture_output=True, timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    assert (done.returncode == 0) is healthy, done.stderr


def _dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    """(exception, pattern) per line, as the builder matches them: Go's filepath.Match plus ``**``."""
    rules = []
    for raw in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated, line = line.startswith("!"), line.lstrip("!").strip().strip("/")
        regex = re.escape(line).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        regex = regex.replace(r"\?", "[^/]").replace(r"\[", "[").replace(r"\]", "]")
        rules.append((negated, re.compile(regex)))
    return rules


def _in_context(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    excluded = False
    for negated, pattern in rules:
        if any(pattern.fullmatch(p) for p in prefixes):
            excluded = not negated
    return not excluded


def test_dockerignore_keeps_what_the_build_copies_and_nothing_local():
    rules = _dockerignore()
    sources = [s for stage in _dockerfile() for c in _instructions(stage, "COPY") if "--from=" not in c
               for s in c.split()[:-1]]
    assert "pyproject.toml" in sources
    needed = [p for s in sources for p in ([ROOT / s] if (ROOT / s).is_file() else (ROOT / s).rglob("*"))
              if p.is_file() and "__pycache__" not in p.parts]
    assert len(needed) > 50
    left_out = [str(p.relative_to(ROOT)) for p in needed if not _in_context(str(p.relative_to(ROOT)), rules)]
    assert not left_out
    for local in (".venv/bin/python", ".git/HEAD", "agent/__pycache__/cli.cpython-311.pyc",
                  "costagent.egg-info/PKG-INFO",
                  "build/lib/agent/cli.py", "dist/costagent-0.1.0.whl", ".pytest_cache/README.md",
                  ".hypothesis/examples/x", "tests/test_infra.py", "costagent-report.html", "costagent-plan.json",
                  "providers/.pytest_cache/v"):
        assert not _in_context(local, rules), local


def test_dockerfile_copies_every_package_the_project_installs():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    readme = project["project"]["readme"]
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = {s.strip("./") for c in _instructions(_dockerfile()[1], "COPY") for s in c.split()[:-1]}
    assert packages | {"pyproject.toml", readme} <= copied


# --- systemd -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", UNITS, ids=[p.name for p in UNITS])
def test_units_parse_as_ini(path):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string(path.read_text(encoding="utf-8"))
    assert parser.sections()[0] == "Unit" and parser["Unit"]["Description"]


HARDENING = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
             "PrivateDevices": "yes", "RestrictSUIDSGID": "yes", "CapabilityBoundingSet": ""}


@pytest.mark.parametrize(("name", "kind"), [("costagent.service", "simple"), ("costagent-run.service", "oneshot")])
def test_services_run_hardened_with_the_state_where_costagent_looks(name, kind):
    service = {k: v[-1] for k, v in _unit(SYSTEMD / name)["Service"].items()}
    assert service["Type"] == kind
    assert service.get("DynamicUser") == "yes" or service.get("User") == "costagent"
    assert service["StateDirectory"] == "costagent"
    env = _environment(_unit(SYSTEMD / name)["Service"])
    assert env["COSTAGENT_CONFIG"] == "/etc/costagent/costagent.yaml"
    state = default_state_url({"XDG_STATE_HOME": env["XDG_STATE_HOME"]})
    assert state == f"sqlite:////var/lib/{service['StateDirectory']}/state.db"
    assert service["EnvironmentFile"] == "-/etc/costagent/env"
    assert (service["KillSignal"], service["TimeoutStopSec"]) == ("SIGTERM", "60")
    assert {k: service.get(k) for k in HARDENING} == HARDENING
    assert PurePosixPath(env["MPLCONFIGDIR"]).is_relative_to(f"/var/cache/{service['CacheDirectory']}")


def test_daemon_unit_restarts_on_failure_and_starts_at_boot():
    unit = _unit(SYSTEMD / "costagent.service")
    assert unit["Service"]["Restart"] == ["on-failure"]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_timer_starts_the_run_on_weekday_mornings_and_catches_up():
    timer = _unit(SYSTEMD / "costagent-run.timer")
    assert timer["Timer"]["OnCalendar"] == ["Mon..Fri 09:00"]
    assert timer["Timer"]["Persistent"] == ["true"]
    assert (SYSTEMD / timer["Timer"].get("Unit", ["costagent-run.service"])[0]).is_file()
    assert timer["Install"]["WantedBy"] == ["timers.target"]
    assert "Install" not in _unit(SYSTEMD / "costagent-run.service"), "the timer starts it, not boot"


def test_systemd_analyze_verify_accepts_the_units(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    for path in UNITS:  # verify insists that ExecStart's program exists: a real one stands in for costagent
        text = path.read_text(encoding="utf-8").replace("/usr/local/bin/costagent", sys.executable)
        (tmp_path / path.name).write_text(text, encoding="utf-8")
    copies = [str(tmp_path / p.name) for p in UNITS]
    done = subprocess.run([analyze, "verify", *copies], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    complaints = [line for line in (done.stdout + done.stderr).splitlines()
                  if str(tmp_path) in line or any(p.name in line for p in UNITS)]
    assert done.returncode == 0 and not complaints, done.stdout + done.stderr


# --- the README --------------------------------------------------------------------------------------------------


def test_infra_readme_describes_every_deployment_file():
    readme = (INFRA / "README.md").read_text(encoding="utf-8")
    files = [DOCKERFILE, *K8S_FILES, *UNITS]
    missing = [p.name for p in files if p.name not in readme]
    assert not missing
    for command in ("docker build -f infra/container/Dockerfile", "kubectl apply -k infra/kubernetes",
                    "systemctl enable --now"):
        assert command in readme
