"""The table of services (operator/ticketplatform_operator/services.py) against the services' own
code, without a cluster:

- every environment variable the operator sets for a service is one that service's code reads
  (its config, read through a recording environment, and every module its processes import);
- every setting a service cannot do without in a cluster (its default points at this machine) is
  set by the operator or comes from the Secret the table names;
- each declared service has its package, config, Dockerfile and local-stack process.
"""
from __future__ import annotations

import ast
import dataclasses
import importlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ticketing_common.config import ConfigError
from ticketplatform_operator import model, render
from ticketplatform_operator.services import BY_NAME, SERVICES, ServiceDef, env_prefix, start_order

REPO = Path(__file__).resolve().parents[2]
SERVICES_DIR = REPO / "services"
NAMES = [s.name for s in SERVICES]

# Every option on: Kafka, demo seeding, Secrets; no spec env (it would override what is checked).
FULL_SPEC = {
    "kafka": {"bootstrapServers": "kafka-0.kafka:9092"},
    "services": {
        s.name: {"secretRef": "app-credentials",
                 **({"migrationSecretRef": "owner-credentials"} if s.migrates else {}),
                 **({"seedDemoData": True} if "seedDemoData" in model.SERVICE_SPECS[s.name].model_fields else {})}
        for s in SERVICES
    },
}


def platform() -> render.Platform:
    return render.Platform(name="tickets", namespace="shop", uid="uid-1", spec=model.parse_spec(FULL_SPEC))


# ---- what a service's code reads ---------------------------------------------------------------

class RecordingEnviron(dict):
    """An environment that remembers every variable asked for (the config helpers call .get)."""

    def __init__(self, values: dict[str, str] | None = None) -> None:
        super().__init__(values or {})
        self.asked: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.append(key)
        return super().get(key, default)


def config_class(service: ServiceDef) -> type:
    return importlib.import_module(f"{service.package}.config").Config


def config_reads(service: ServiceDef) -> set[str]:
    environ = RecordingEnviron()
    config_class(service).from_env(environ)
    return set(environ.asked)


def _module_file(module: str) -> Path | None:
    base = SERVICES_DIR.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imported(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)  # submodules


def reachable_modules(roots: set[str]) -> dict[str, ast.AST]:
    """The modules under services/ that `roots` import, directly or not, parsed."""
    seen: dict[str, ast.AST] = {}
    todo = list(roots)
    while todo:
        module = todo.pop()
        path = _module_file(module)
        if module in seen or path is None:
            continue
        seen[module] = tree = ast.parse(path.read_text(), str(path))
        todo += [m for m in _imported(tree) if m not in seen]
        todo += [module.rsplit(".", 1)[0]] if "." in module else []  # a package's __init__ runs first
    return seen


def _is_os_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ" and isinstance(node.value, ast.Name) and node.value.id == "os"


def _env_helper(node: ast.AST) -> bool:
    """env_str(...), env_int(...): the config helpers of ticketing_common.config."""
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return name.startswith("env_")


def env_reads(tree: ast.AST) -> set[str]:
    """Variables a module reads: os.environ.get("X"), os.environ["X"], os.getenv("X"), env_str("X", ...)."""
    found = set()
    for node in ast.walk(tree):
        key = None
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            if (isinstance(func, ast.Attribute) and (
                    (func.attr == "get" and _is_os_environ(func.value))
                    or (func.attr == "getenv" and isinstance(func.value, ast.Name) and func.value.id == "os"))) \
                    or _env_helper(func):
                key = node.args[0]
        elif isinstance(node, ast.Subscript) and _is_os_environ(node.value):
            key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            found.add(key.value)
    return found


def image_command(service: ServiceDef) -> list[str]:
    """The CMD of the service's Dockerfile, e.g. gunicorn -c python:<conf> <package>.wsgi:app."""
    text = (SERVICES_DIR / "docker" / f"{service.name}.Dockerfile").read_text()
    (cmd,) = [line.removeprefix("CMD ") for line in text.splitlines() if line.startswith("CMD ")]
    return json.loads(cmd)


def process_roots(service: ServiceDef) -> set[str]:
    """The modules each process started with the service's environment runs: the image's command
    (gunicorn's config module and the WSGI app) and, when the service migrates, its migration."""
    roots = {arg.removeprefix("python:") for arg in image_command(service) if arg.startswith("python:")}
    roots |= {arg.split(":")[0] for arg in image_command(service) if arg.endswith(":app")}
    if service.migrates:
        roots.add(f"{service.package}.migrate")
    return roots


def code_reads(roots: set[str]) -> set[str]:
    return set().union(*(env_reads(tree) for tree in reachable_modules(roots).values()))


def service_reads(service: ServiceDef) -> set[str]:
    """What the service reads: its config, exactly (names it builds, such as <NAME>_URL, included),
    and the literal reads of every module its processes import (gunicorn's config, metrics ...)."""
    return config_reads(service) | code_reads(process_roots(service))


# ---- what a service cannot do without in a cluster ---------------------------------------------

LOOPBACK = re.compile(r"(^|[/@:])(127\.0\.0\.1|localhost)([:/]|$)")


def required_in_cluster(service: ServiceDef) -> set[str]:
    """The variables whose default points at this machine (127.0.0.1, localhost): right for the
    local stack, never for a pod, so a cluster must set them. Found by setting each variable the
    config reads and seeing which fields move."""
    config = config_class(service)
    defaults = config.from_env(RecordingEnviron())
    needed = set()
    for name in config_reads(service):
        try:
            probed = config.from_env(RecordingEnviron({name: "probe.invalid:1"}))
        except ConfigError:
            continue  # a number, a boolean or a choice: not an address
        for f in dataclasses.fields(config):
            default = getattr(defaults, f.name)
            if getattr(probed, f.name) != default and isinstance(default, str) and LOOPBACK.search(default):
                needed.add(name)
    return needed


# ---- the checks ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_every_variable_the_operator_sets_is_read_by_the_service(name):
    service = BY_NAME[name]
    env = render.service_env(platform(), name)
    unread = sorted(set(env) - service_reads(service))
    assert not unread, f"{name}: the operator sets {unread}, which no code of the service reads"


@pytest.mark.parametrize("name", NAMES)
def test_the_code_scan_sees_what_the_config_reads_by_literal_name(name):
    """Guards the scan: on the config module it finds every variable the config asks for by a
    literal name, and it follows the imports from the image's command to the config."""
    service = BY_NAME[name]
    source = (SERVICES_DIR / service.package / "config.py").read_text()
    literal = {v for v in config_reads(service) if f'"{v}"' in source}
    assert literal and literal <= code_reads(process_roots(service))
    assert {"PORT", "PROMETHEUS_MULTIPROC_DIR"} <= code_reads(process_roots(service))  # gunicorn's config, metrics


def test_the_relay_reads_what_the_operator_adds_for_it():
    owner = render.RELAY_OWNER
    added = set(render.relay_env(platform())) - set(render.service_env(platform(), owner.name))
    reads = code_reads({owner.companion.module})
    assert added and added <= reads, sorted(added - reads)


@pytest.mark.parametrize("name", NAMES)
def test_every_setting_a_cluster_needs_is_set_by_the_operator_or_a_secret(name):
    service = BY_NAME[name]
    env = render.service_env(platform(), name)
    needed = required_in_cluster(service)
    missing = sorted(needed - set(env) - set(service.secrets))
    assert not missing, f"{name} needs {missing} in a cluster: the operator does not set them and the table names no Secret for them"
    # What the table says comes from the Secret is a setting the service reads, and one that the
    # operator leaves alone (it would be overridden by the Secret's key otherwise).
    assert set(service.secrets) <= config_reads(service), name
    assert not set(service.secrets) & set(env), name


def test_the_required_settings_are_found():
    """The probe above is not vacuous: the database and the backends' addresses are found."""
    assert "DATABASE_URL" in required_in_cluster(BY_NAME["booking-service"])
    assert {BY_NAME[b].url_env for b in BY_NAME["frontend"].calls} <= required_in_cluster(BY_NAME["frontend"])


@pytest.mark.parametrize("example", ["local", "production"])
def test_examples_give_each_service_the_secret_it_needs(example):
    spec = yaml.safe_load((REPO / "examples" / f"{example}.yaml").read_text())["spec"]
    for service in SERVICES:
        if service.secrets:
            assert spec["services"][service.name].get("secretRef"), f"{example}: {service.name} needs {service.secrets}"


def test_secret_settings_reach_the_pods_and_migrations_through_env_from():
    deps = {m["metadata"]["name"]: m for m in render.render(platform()) if m["kind"] == "Deployment"}
    for service in SERVICES:
        if not service.secrets:
            continue
        spec = deps[f"tickets-{service.name}"]["spec"]["template"]["spec"]
        for container in spec["containers"] + spec.get("initContainers", []):
            assert container.get("envFrom"), (service.name, container["name"])


# ---- the table itself, and what each entry stands for ------------------------------------------

def test_the_table_is_consistent():
    assert len(set(NAMES)) == len(NAMES)
    for service in SERVICES:
        assert service.name not in service.calls
        assert set(service.calls) <= set(NAMES), service.name
        assert not set(service.env) & {s.env for s in service.takes}
    assert [s.name for s in start_order()][-1] == "frontend"  # the gateway waits for its backends
    assert sum(1 for s in SERVICES if s.companion) == 1  # the one outbox relay


@pytest.mark.parametrize("name", NAMES)
def test_each_service_has_its_package_and_image(name):
    service = BY_NAME[name]
    package = SERVICES_DIR / service.package
    assert (package / "config.py").is_file() and (package / "wsgi.py").is_file()
    assert f"{service.package}.wsgi:app" in image_command(service)
    if service.migrates:
        assert (package / "migrate.py").is_file()
    if service.companion:
        assert _module_file(service.companion.module) is not None


def test_the_model_follows_the_table():
    defaults = model.parse_spec({}).services.by_name()
    assert list(defaults) == NAMES
    for service in SERVICES:
        spec = defaults[service.name]
        assert spec.image == f"{model.DEFAULT_IMAGE_REPOSITORY}/{service.name}:{model.DEFAULT_IMAGE_TAG}"
        assert (spec.port, spec.serviceType, spec.autoscaling.enabled) == (service.port, service.service_type, service.autoscaling)
        assert hasattr(spec, "migrationSecretRef") == service.migrates
    assert model.TicketPlatformStatus().readyServices == f"0/{len(SERVICES)}"


def _procfile() -> dict[str, str]:
    lines = (REPO / "stack" / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))


def test_the_local_stack_runs_every_service():
    procs = _procfile()
    for service in SERVICES:
        command = procs.get(service.name, "")
        assert f"{service.package}.wsgi:app" in command, f"stack/Procfile has no process for {service.name}"
        assert f"--bind 127.0.0.1:${env_prefix(service.name)}_PORT" in command, command
        assert f"SERVICE_NAME={service.name} " in command, command
        assert command.startswith(f"python -m {service.package}.migrate && ") == service.migrates, command
        if service.companion:
            assert any(f"python -m {service.companion.module}" in c for c in procs.values())
