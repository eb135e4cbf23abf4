"""Container images: every Dockerfile runs as a non-root user on a pinned base, and
scripts/build-images.sh builds and pushes all six images to the registry it is given.

There is no container engine on this machine, so the script runs against a stand-in engine that
records its command lines (CONTAINER_ENGINE); what docker itself would do is not tested here."""
from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from ticketplatform_operator.services import NAMES as SERVICE_NAMES
from tests.fixtures.controlplane import REPO_DIR

SCRIPT = REPO_DIR / "scripts" / "build-images.sh"
DOCKERFILES = {
    "operator": REPO_DIR / "operator" / "Dockerfile",
    **{name: REPO_DIR / "services" / "docker" / f"{name}.Dockerfile" for name in SERVICE_NAMES},
    "analytics-job": REPO_DIR / "flink" / "Dockerfile",
}
# name[:tag][@sha256:digest] with a tag that is a version (has a digit, is not `latest`), or a digest.
PINNED_FROM = re.compile(r"^(?P<image>[\w./-]+)(:(?P<tag>[\w.-]+))?(@sha256:[0-9a-f]{64})?$")


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out, buf = [], ""
    for line in path.read_text().splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        buf += line.rstrip("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            word, _, rest = buf.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            buf = ""
    return out


def test_every_service_has_a_dockerfile():
    found = {p.name.removesuffix(".Dockerfile") for p in (REPO_DIR / "services" / "docker").glob("*.Dockerfile")}
    assert found == set(SERVICE_NAMES)  # services/docker/<name>.Dockerfile, one per declared service


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_is_pinned_and_non_root(name: str):
    path = DOCKERFILES[name]
    instructions = _instructions(path)
    froms = [args for word, args in instructions if word == "FROM"]
    assert froms, path
    # The base is a build argument (the local stack passes one built here); its default is what a
    # registry build uses, and that default must be pinned.
    defaults = dict(a.split("=", 1) for w, a in instructions if w == "ARG" and "=" in a)
    for args in froms:
        ref = re.sub(r"\$\{(\w+)\}", lambda m: defaults.get(m.group(1), m.group(0)), args.split()[0])
        m = PINNED_FROM.match(ref)
        assert m, f"{path.name}: FROM {ref}"
        digest = "@sha256:" in ref
        tag = m.group("tag") or ""
        assert digest or (tag and tag != "latest" and re.search(r"\d", tag)), \
            f"{path.name}: base image {ref} is not pinned to a version or digest"
    users = [args for word, args in instructions if word == "USER"]
    assert users, f"{path.name}: no USER (would run as root)"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"{path.name}: runs as {users[-1]}"
    # The user is numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
    assert user.isdigit() and int(user) >= 1000, f"{path.name}: USER {users[-1]}"
    # Nothing after USER switches back to root.
    last_user_at = max(i for i, (w, _) in enumerate(instructions) if w == "USER")
    assert not any(w == "RUN" and "sudo" in a for w, a in instructions[last_user_at:])
    # Every COPY source exists (the build context is the repository root), and every package the
    # Dockerfile takes from requirements.txt is pinned there.
    for word, args in instructions:
        if word == "COPY" and not args.startswith("--from"):
            for src in args.split()[:-1]:
                if not src.startswith("--"):
                    assert (REPO_DIR / src).exists(), f"{path.name}: COPY {src}: no such path"
    requirements = (REPO_DIR / "requirements.txt").read_text().lower()
    for word, args in instructions:
        m = re.search(r"grep -iE '\^\((?P<names>[^)]*)\)==", args) if word == "RUN" else None
        if m:
            for pkg in m.group("names").split("|"):
                pkg = pkg.replace("\\[", "[").replace("\\]", "]").lower()
                assert re.search(rf"^{re.escape(pkg)}==", requirements, re.M), f"{path.name}: {pkg} not pinned"


def test_operator_image_runs_what_the_deployment_expects():
    instructions = dict((w, a) for w, a in _instructions(DOCKERFILES["operator"]) if w in ("ENTRYPOINT", "CMD", "USER"))
    assert instructions["ENTRYPOINT"] == '["python", "-m", "ticketplatform_operator"]'
    import yaml

    deployment = yaml.safe_load((REPO_DIR / "operator" / "deploy" / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    assert str(pod["securityContext"]["runAsUser"]) == instructions["USER"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["args"][0] == "run"


def test_script_parses():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    assert SCRIPT.stat().st_mode & stat.S_IXUSR, "scripts/build-images.sh is not executable"


@pytest.mark.parametrize("args", [[], ["-h"], [""], ["Not A Registry!"], ["ghcr.io/x", "bad tag!"], ["a", "b", "c"]])
def test_script_refuses_without_a_valid_registry(args: list[str], tmp_path: Path):
    engine = _fake_engine(tmp_path)
    proc = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          env={**os.environ, "CONTAINER_ENGINE": str(engine)})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "REGISTRY" in proc.stderr or "registry" in proc.stderr or "tag" in proc.stderr
    assert not (tmp_path / "calls").exists(), "nothing may be built or pushed"


def _fake_engine(tmp_path: Path) -> Path:
    """Records each command line in calls; for a build, the files of its context (the last
    argument) in context.txt, since the script deletes the context when it ends."""
    engine = tmp_path / "engine"
    engine.write_text(f"""#!/bin/bash
echo "$*" >> {tmp_path / "calls"}
if [ "$1" = build ]; then
  for last; do :; done
  (cd "$last" && find . -type f | sed 's|^\\./||' | sort) > {tmp_path / "context.txt"}
fi
""")
    engine.chmod(0o755)
    return engine


def test_script_builds_and_pushes_all_six_images(tmp_path: Path):
    engine = _fake_engine(tmp_path)
    registry = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ticketplatform"
    proc = subprocess.run(["bash", str(SCRIPT), registry, "1.2.3"], capture_output=True, text=True,
                          env={**os.environ, "CONTAINER_ENGINE": str(engine)}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    builds = [c for c in calls if c.startswith("build ")]
    pushes = [c for c in calls if c.startswith("push ")]
    assert len(builds) == 6 and len(pushes) == 6
    context_files = set((tmp_path / "context.txt").read_text().split())
    # The context holds what the Dockerfiles COPY, not the virtualenvs and caches of the work tree.
    assert not any(f.startswith((".venv", ".cache", ".run", ".git/", "test-artifacts")) for f in context_files)
    assert not any("__pycache__" in f for f in context_files)
    assert len(context_files) < 500, len(context_files)
    for name, dockerfile in DOCKERFILES.items():
        image = f"{registry}/{name}:1.2.3"
        (build,) = [b for b in builds if f"--tag {image} " in b]
        relative = dockerfile.relative_to(REPO_DIR).as_posix()
        context = build.rsplit(" ", 1)[1]
        assert f"--file {context}/{relative} " in build
        assert relative in context_files
        for word, args in _instructions(dockerfile):
            if word == "COPY":
                for src in args.split()[:-1]:
                    assert src in context_files or any(f.startswith(src.rstrip("/") + "/") for f in context_files), \
                        f"{relative}: COPY {src} is not in the build context"
        assert f"push {image}" in pushes
    assert not Path(context).exists(), "the staged build context is removed afterwards"
    # Every push comes after all builds: a failing build pushes nothing.
    assert calls.index(pushes[0]) > calls.index(builds[-1])


def test_script_default_tag_is_the_project_version(tmp_path: Path):
    engine = _fake_engine(tmp_path)
    proc = subprocess.run(["bash", str(SCRIPT), "ghcr.io/ticketplatform"], capture_output=True, text=True,
                          env={**os.environ, "CONTAINER_ENGINE": str(engine), "PUSH": "0", "ONLY": "operator"})
    assert proc.returncode == 0, proc.stderr
    version = re.search(r'^version = "(.+)"', (REPO_DIR / "pyproject.toml").read_text(), re.M).group(1)
    calls = (tmp_path / "calls").read_text().splitlines()
    assert len(calls) == 1 and f"--tag ghcr.io/ticketplatform/operator:{version} " in calls[0]
    # ... which is the tag of the images the CRD defaults to and the operator Deployment runs.
    deployment = (REPO_DIR / "operator" / "deploy" / "deployment.yaml").read_text()
    assert f"image: ghcr.io/ticketplatform/operator:{version}" in deployment


def test_script_stops_at_the_first_failing_build(tmp_path: Path):
    engine = tmp_path / "engine"
    engine.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path / "calls"}\nexit 1\n')
    engine.chmod(0o755)
    proc = subprocess.run(["bash", str(SCRIPT), "ghcr.io/ticketplatform", "1.0.0"], capture_output=True, text=True,
                          env={**os.environ, "CONTAINER_ENGINE": str(engine)})
    assert proc.returncode != 0
    assert len((tmp_path / "calls").read_text().splitlines()) == 1
