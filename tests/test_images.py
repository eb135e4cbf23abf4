"""The locally built images (stack/images.sh) carry no trace of this machine's TLS interception.

Builds run with the host's CA bundle bind-mounted into RUN steps (pip needs it here), so every layer
of every image is untarred and searched for this machine's CA certificates (the ones in
/usr/local/share/ca-certificates/, as PEM text or DER bytes, e.g. inside a Java keystore) and for
credential files; the image config must not carry the host's CA/pip environment and must run as
user 10001. The build is cached, so the session fixture costs seconds after the first run.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import re
import ssl
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_DIR = Path(__file__).resolve().parents[1]
IMAGES = ("frontend", "user-service", "event-catalog", "booking-service", "operator", "analytics-job")
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")

# Environment that points at host files or configures TLS/pip/credentials: never in an image config.
FORBIDDEN_ENV = {
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT", "PIP_CLIENT_CERT",
    "PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO", "AWS_CA_BUNDLE", "HTTPLIB2_CA_CERTS", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
    "NIX_SSL_CERT_FILE", "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy",
}
SECRET_ENV_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.I)

# Files that are credentials wherever they are.
CREDENTIAL_NAMES = {".netrc", "_netrc", ".pypirc", ".git-credentials", ".npmrc", ".dockercfg"}
CREDENTIAL_SUFFIXES = (".aws/credentials", ".aws/config", ".docker/config.json", ".kube/config",
                       ".config/gcloud/credentials.db", ".config/gcloud/application_default_credentials.json",
                       ".ssh/id_rsa", ".ssh/id_ed25519", ".ssh/id_ecdsa")
PIP_CONFIGS = ("pip.conf", "pip.ini")
URL_WITH_PASSWORD = re.compile(rb"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.I)


@dataclass(frozen=True)
class HostCA:
    path: Path
    der: bytes
    pem_line: bytes  # the first 64 base64 characters: one whole line in any PEM file

    @classmethod
    def load_all(cls) -> list["HostCA"]:
        cas = []
        for path in sorted(HOST_CA_DIR.glob("*")):
            text = path.read_text()
            for block in re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", text, re.S):
                der = ssl.PEM_cert_to_DER_cert(block)
                cas.append(cls(path, der, base64.b64encode(der)[:64]))
        return cas


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    files: int = 0


def scan_layer(layer: tarfile.TarFile, label: str, cas: list[HostCA], found: Findings) -> None:
    """Every file of one layer: host CA (PEM or DER), credential files, pip configs with secrets."""
    for member in layer:
        name = member.name.lstrip("./")
        base = name.rsplit("/", 1)[-1]
        if base in CREDENTIAL_NAMES or any(name.endswith(s) for s in CREDENTIAL_SUFFIXES):
            found.problems.append(f"{label}: credential file /{name}")
        if not member.isfile():
            continue
        found.files += 1
        data = layer.extractfile(member).read()
        for ca in cas:
            if ca.der in data or ca.pem_line in data:
                found.problems.append(f"{label}: /{name} contains this machine's CA {ca.path.name}")
        if base in PIP_CONFIGS and (URL_WITH_PASSWORD.search(data) or re.search(rb"(?im)^\s*(cert|client-cert)\s*=", data)):
            found.problems.append(f"{label}: /{name} sets a certificate or a password")
        if base.endswith((".conf", ".ini", ".cfg", ".toml", ".env", "rc")) and len(data) < 1 << 20 \
                and not name.startswith(("usr/lib/", "opt/venv/lib/", "usr/share/")) and URL_WITH_PASSWORD.search(data):
            found.problems.append(f"{label}: /{name} holds a URL with a password")


class OCIArchive:
    """An OCI image archive as `stack/images.sh build` writes it (buildah push oci-archive:)."""

    def __init__(self, path: Path):
        self.path = path
        self.tar = tarfile.open(path)
        self.index = self.json("index.json")
        self.manifest = self.json(self.blob_path(self.index["manifests"][0]["digest"]))
        self.config = self.json(self.blob_path(self.manifest["config"]["digest"]))

    @staticmethod
    def blob_path(digest: str) -> str:
        algo, hexdigest = digest.split(":", 1)
        return f"blobs/{algo}/{hexdigest}"

    def json(self, name: str) -> dict:
        return json.load(self.tar.extractfile(name))

    @property
    def ref_name(self) -> str:
        return self.index["manifests"][0].get("annotations", {}).get("org.opencontainers.image.ref.name", "")

    def layers(self):
        for layer in self.manifest["layers"]:
            raw = self.tar.extractfile(self.blob_path(layer["digest"]))
            stream = gzip.GzipFile(fileobj=raw) if "gzip" in layer["mediaType"] else raw
            with tarfile.open(fileobj=stream, mode="r|") as t:
                yield layer["digest"], t


def run_images(*args: str, timeout: float) -> str:
    proc = subprocess.run(["bash", str(REPO_DIR / "stack" / "images.sh"), *args], cwd=REPO_DIR,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"stack/images.sh {' '.join(args)} failed:\n{proc.stderr[-4000:]}"
    return proc.stdout


@pytest.fixture(scope="session")
def built_images() -> dict[str, OCIArchive]:
    # Cold: ~25 min on 2 shared cores (PyFlink is most of it); warm: a few seconds.
    run_images("build", timeout=3600)
    return {name: OCIArchive(Path(run_images("archive", name, timeout=120).strip())) for name in IMAGES}


@pytest.fixture(scope="session")
def host_cas() -> list[HostCA]:
    cas = HostCA.load_all()
    if not cas:
        pytest.skip(f"no CA certificates in {HOST_CA_DIR} on this machine: nothing to look for")
    return cas


def test_scanner_finds_a_planted_ca_and_credentials(host_cas: list[HostCA]) -> None:
    """The scan itself works: a layer holding the CA (PEM and DER) and credential files is reported."""
    ca = host_cas[0]
    pem = ssl.DER_cert_to_PEM_cert(ca.der).encode()
    planted = {
        "etc/ssl/certs/ca-certificates.crt": b"# other certs\n" + pem,
        "etc/ssl/certs/java/cacerts": b"\xfe\xed\xfe\xed" + ca.der + b"\x00",
        "root/.netrc": b"machine pypi.org login x password y\n",
        "etc/pip.conf": b"[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n",
        "app/ok.py": b"print('hello')\n",
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in planted.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    buf.seek(0)
    found = Findings()
    with tarfile.open(fileobj=buf, mode="r|") as t:
        scan_layer(t, "planted", host_cas, found)
    text = "\n".join(found.problems)
    assert "/etc/ssl/certs/ca-certificates.crt contains this machine's CA" in text
    assert "/etc/ssl/certs/java/cacerts contains this machine's CA" in text
    assert "credential file /root/.netrc" in text
    assert "/etc/pip.conf sets a certificate" in text
    assert "ok.py" not in text and found.files == 5


@pytest.mark.parametrize("name", IMAGES)
def test_image_layers_hold_no_host_ca_or_credentials(name: str, built_images: dict[str, OCIArchive],
                                                     host_cas: list[HostCA]) -> None:
    image = built_images[name]
    found = Findings()
    for digest, layer in image.layers():
        scan_layer(layer, f"{name} layer {digest[7:19]}", host_cas, found)
    assert found.files > 1000, f"{name}: only {found.files} files in its layers; is this the whole image?"
    # The history and config text too (build args and RUN lines are recorded there).
    config_text = json.dumps(image.config).encode()
    for ca in host_cas:
        assert ca.pem_line not in config_text, f"{name}: the image config holds the CA {ca.path.name}"
    assert not found.problems, "\n".join(found.problems)


@pytest.mark.parametrize("name", IMAGES)
def test_image_config_runs_as_10001_without_host_tls_env(name: str, built_images: dict[str, OCIArchive]) -> None:
    image = built_images[name]
    assert image.ref_name == f"ghcr.io/ticketplatform/{name}:0.1.0"
    cfg = image.config["config"]
    assert cfg.get("User") == "10001"
    env = dict(item.split("=", 1) for item in cfg.get("Env", []))
    leaked = sorted(k for k in env if k in FORBIDDEN_ENV or SECRET_ENV_NAME.search(k))
    assert not leaked, f"{name}: image env carries {leaked}"
    assert not [k for k, v in env.items() if v.startswith(str(HOST_CA_DIR)) or v.endswith("ca-certificates.crt")]
    # python/pip on PATH as on python:slim (the service commands call `python` and `gunicorn`).
    assert env.get("PATH", "").startswith("/opt/venv/bin:") or "/usr/local/bin" in env.get("PATH", "")
    assert env.get("PIP_NO_CACHE_DIR") == "1"
    entry = (cfg.get("Entrypoint") or []) + (cfg.get("Cmd") or [])
    assert entry and any("python" in part or "gunicorn" in part for part in entry), entry


def test_analytics_image_has_its_job_jar_and_jre(built_images: dict[str, OCIArchive]) -> None:
    image = built_images["analytics-job"]
    names: set[str] = set()
    for _, layer in image.layers():
        names.update(m.name.lstrip("./") for m in layer)
    assert "opt/flink/lib/flink-sql-connector-kafka.jar" in names
    assert "opt/analytics/analytics_job.py" in names
    assert any(n.startswith("usr/lib/jvm/java-17-openjdk") and n.endswith("/bin/java") for n in names)
    assert any("site-packages/pyflink/" in n for n in names)
    env = dict(item.split("=", 1) for item in image.config["config"]["Env"])
    assert env["FLINK_KAFKA_CONNECTOR_JAR"] == "/opt/flink/lib/flink-sql-connector-kafka.jar"
    assert image.config["config"]["Entrypoint"] == ["python", "/opt/analytics/analytics_job.py"]


DOCKERFILES = {
    "frontend": "services/docker/frontend.Dockerfile", "user-service": "services/docker/user-service.Dockerfile",
    "event-catalog": "services/docker/event-catalog.Dockerfile",
    "booking-service": "services/docker/booking-service.Dockerfile",
    "operator": "operator/Dockerfile", "analytics-job": "flink/Dockerfile",
}


def pinned(name: str) -> str:
    for line in (REPO_DIR / "stack" / "versions.env").read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1].strip()
    raise AssertionError(f"{name} is not pinned in stack/versions.env")


@pytest.mark.parametrize("name", IMAGES)
def test_dockerfile_base_is_a_build_arg_defaulting_to_the_registry_image(name: str) -> None:
    """A user's `docker build` without --build-arg still gets python:3.11.11-slim-bookworm."""
    lines = [ln.strip() for ln in (REPO_DIR / DOCKERFILES[name]).read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    assert lines[0] == "ARG BASE_IMAGE=python:3.11.11-slim-bookworm"
    assert [ln for ln in lines if ln.startswith("FROM ")] == ["FROM ${BASE_IMAGE}"]


def test_analytics_dockerfile_pins_the_connector_of_versions_env() -> None:
    text = (REPO_DIR / "flink" / "Dockerfile").read_text()
    assert f"ARG FLINK_KAFKA_CONNECTOR={pinned('FLINK_KAFKA_CONNECTOR')}\n" in text
    assert f"apache-flink=={pinned('FLINK_VERSION')}" in (REPO_DIR / "flink" / "requirements.txt").read_text()
    sha = re.search(r"ARG FLINK_KAFKA_CONNECTOR_SHA256=([0-9a-f]{64})\n", text)
    assert sha, "flink/Dockerfile pins no sha256 for the connector jar"
    version = pinned("FLINK_KAFKA_CONNECTOR")
    cached = Path(os.environ.get("TP_CACHE_DIR", REPO_DIR / ".cache")) / "flink" / version / \
        f"flink-sql-connector-kafka-{version}.jar"
    if cached.is_file():  # the jar stack/flink.sh fetched with mvn (Maven checks Central's sha1)
        assert hashlib.sha256(cached.read_bytes()).hexdigest() == sha.group(1)


def test_input_hash_follows_the_copied_files_only(tmp_path: Path) -> None:
    """stack/images/context.py: a change to a COPYed file (or the Dockerfile) changes the hash, a change
    elsewhere or to a byte-cache file does not; the context holds exactly the COPYed files."""
    repo = tmp_path / "repo"
    (repo / "app" / "__pycache__").mkdir(parents=True)
    (repo / "docs").mkdir()
    (repo / "app" / "main.py").write_text("print('v1')\n")
    (repo / "app" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\x00")
    (repo / "requirements.txt").write_text("flask==3.1.3\n")
    (repo / "docs" / "notes.md").write_text("n\n")
    (repo / "Dockerfile").write_text("ARG BASE_IMAGE=python:3.11.11-slim-bookworm\nFROM ${BASE_IMAGE}\n"
                                      "COPY requirements.txt /tmp/r.txt\nCOPY --chown=10001 app \\\n  /app/app\n")
    script = REPO_DIR / "stack" / "images" / "context.py"

    def digest(into: Path | None = None) -> str:
        args = ["python3", str(script), str(repo), "Dockerfile"] + (["--into", str(into)] if into else [])
        return subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()

    first = digest(tmp_path / "ctx")
    copied = sorted(str(p.relative_to(tmp_path / "ctx")) for p in (tmp_path / "ctx").rglob("*") if p.is_file())
    assert copied == ["Dockerfile", "app/main.py", "requirements.txt"]
    (repo / "docs" / "notes.md").write_text("changed\n")
    (repo / "app" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\x01")
    assert digest() == first
    (repo / "app" / "main.py").write_text("print('v2')\n")
    second = digest()
    assert second != first
    with (repo / "Dockerfile").open("a") as f:
        f.write("USER 10001\n")
    assert digest() not in (first, second)
