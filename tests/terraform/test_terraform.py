"""Static checks of terraform/aws and terraform/gcp, parsed with python-hcl2.

No cloud account and no provider plugins are available here (the provider registries cannot be
reached), so `terraform validate` cannot run. Instead these tests parse every .tf file and check
what validate would partly catch (every var./local./resource/data reference is declared in the same
module), plus what the issue asks for: descriptions on every variable, outputs that reference real
objects, no hard-coded account ids or keys, pinned providers, and the settings of the EKS, MSK,
RDS, DynamoDB, S3/Lambda and Dataproc resources. The mutation tests at the end change one thing in
a copy of a module and check that the matching check fails, so none of these checks is vacuous.
When OpenTofu has been built (stack/terraform.sh), `tofu fmt -check` runs too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from ticketplatform_operator.services import NAMES as SERVICES

hcl2 = pytest.importorskip("hcl2")

REPO = Path(__file__).resolve().parents[2]
TF_DIR = REPO / "terraform"
AWS_DIR = TF_DIR / "aws"
GCP_DIR = TF_DIR / "gcp"

OPTS = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, preserve_heredocs=False,
                                 strip_string_quotes=True)

# Providers whose resource types may appear in references (<provider>_<type>.<name>).
PROVIDERS = ("aws", "google", "archive", "tls", "random", "null", "local", "time")
RESOURCE_REF = re.compile(r"(?<![\w.])((?:%s)_[a-z0-9_]+)\.([A-Za-z_][\w-]*)" % "|".join(PROVIDERS))
DATA_REF = re.compile(r"(?<![\w.])data\.([a-z][a-z0-9_]*)\.([A-Za-z_][\w-]*)")
VAR_REF = re.compile(r"(?<![\w.])var\.([A-Za-z_][\w-]*)")
LOCAL_REF = re.compile(r"(?<![\w.])local\.([A-Za-z_][\w-]*)")
MODULE_REF = re.compile(r"(?<![\w.])module\.([A-Za-z_][\w-]*)")

# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------
@dataclass
class Module:
    path: Path
    files: dict[str, dict] = field(default_factory=dict)
    variables: dict[str, dict] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, dict] = field(default_factory=dict)
    resources: dict[tuple[str, str], dict] = field(default_factory=dict)
    data: dict[tuple[str, str], dict] = field(default_factory=dict)
    modules: dict[str, dict] = field(default_factory=dict)
    terraform: list[dict] = field(default_factory=list)
    providers: list[tuple[str, dict]] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)

    def of_type(self, rtype: str) -> dict[str, dict]:
        return {name: body for (t, name), body in self.resources.items() if t == rtype}

    def data_of_type(self, dtype: str) -> dict[str, dict]:
        return {name: body for (t, name), body in self.data.items() if t == dtype}

    def resolve(self, value: Any) -> Any:
        """A literal as it is; `${var.x}` as var x's default; `${local.x}` as local x, resolved."""
        for _ in range(5):
            if not isinstance(value, str):
                return value
            m = re.fullmatch(r"\$\{var\.([A-Za-z_][\w-]*)\}", value)
            if m:
                value = self.variables.get(m.group(1), {}).get("default")
                continue
            m = re.fullmatch(r"\$\{local\.([A-Za-z_][\w-]*)\}", value)
            if m:
                value = self.locals.get(m.group(1))
                continue
            return value
        return value


def _add(target: dict, key: Any, value: Any, mod: Module, what: str) -> None:
    if key in target:
        mod.duplicates.append(f"{what} {key} declared twice")
    target[key] = value


def load_module(path: Path) -> Module:
    mod = Module(path=path)
    tf_files = sorted(path.glob("*.tf"))
    assert tf_files, f"no .tf files in {path}"
    for f in tf_files:
        doc = hcl2.loads(f.read_text(), serialization_options=OPTS)
        mod.files[f.name] = doc
        for item in doc.get("variable", []):
            for name, body in item.items():
                _add(mod.variables, name, body or {}, mod, "variable")
        for item in doc.get("output", []):
            for name, body in item.items():
                _add(mod.outputs, name, body or {}, mod, "output")
        for item in doc.get("locals", []):
            for name, value in item.items():
                _add(mod.locals, name, value, mod, "local")
        for item in doc.get("resource", []):
            for rtype, named in item.items():
                for name, body in named.items():
                    _add(mod.resources, (rtype, name), body or {}, mod, "resource")
        for item in doc.get("data", []):
            for dtype, named in item.items():
                for name, body in named.items():
                    _add(mod.data, (dtype, name), body or {}, mod, "data")
        for item in doc.get("module", []):
            for name, body in item.items():
                _add(mod.modules, name, body or {}, mod, "module")
        mod.terraform.extend(doc.get("terraform", []))
        for item in doc.get("provider", []):
            for name, body in item.items():
                mod.providers.append((name, body or {}))
    return mod


def expressions(obj: Any) -> Iterator[str]:
    """Every string (keys too) that holds an interpolation or expression."""
    if isinstance(obj, str):
        if "${" in obj:
            yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from expressions(k)
            yield from expressions(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from expressions(v)


def interpolations(text: str) -> Iterator[str]:
    """The code inside each ${...} of a string (nested ones included), without its plain quoted
    literals, so that "local_invoker.py" or a description's prose is never read as a reference."""
    i = 0
    while True:
        start = text.find("${", i)
        if start < 0:
            return
        depth, j, in_str = 1, start + 2, False
        while j < len(text) and depth:
            c = text[j]
            if c == "\\":
                j += 2
                continue
            if c == '"':
                in_str = not in_str
            elif not in_str and c == "{":
                depth += 1
            elif not in_str and c == "}":
                depth -= 1
            j += 1
        code = text[start + 2:j - 1]
        yield re.sub(r'"(?:[^"\\$]|\\.)*"', '""', code)
        # Templates nested in quoted strings of this expression ("${local.x}-suffix").
        for inner in re.findall(r'"((?:[^"\\]|\\.)*\$\{(?:[^"\\]|\\.)*)"', code):
            yield from interpolations(inner)
        i = j


def references(obj: Any) -> dict[str, set]:
    refs: dict[str, set] = {"var": set(), "local": set(), "resource": set(), "data": set(), "module": set()}
    for expr in (code for text in expressions(obj) for code in interpolations(text)):
        refs["var"].update(VAR_REF.findall(expr))
        refs["local"].update(LOCAL_REF.findall(expr))
        refs["data"].update(DATA_REF.findall(expr))
        refs["resource"].update(RESOURCE_REF.findall(expr))
        refs["module"].update(MODULE_REF.findall(expr))
    return refs


def unresolved(mod: Module, obj: Any) -> list[str]:
    refs = references(obj)
    missing = [f"var.{v}" for v in sorted(refs["var"]) if v not in mod.variables]
    missing += [f"local.{v}" for v in sorted(refs["local"]) if v not in mod.locals]
    missing += [f"{t}.{n}" for t, n in sorted(refs["resource"]) if (t, n) not in mod.resources]
    missing += [f"data.{t}.{n}" for t, n in sorted(refs["data"]) if (t, n) not in mod.data]
    missing += [f"module.{m}" for m in sorted(refs["module"]) if m not in mod.modules]
    return missing


# ---------------------------------------------------------------------------------------------
# Checks (each returns a list of problems; the tests assert it is empty)
# ---------------------------------------------------------------------------------------------
def generic_problems(mod: Module) -> list[str]:
    problems = list(mod.duplicates)
    for fname, doc in mod.files.items():
        for missing in unresolved(mod, doc):
            problems.append(f"{fname}: reference to undeclared {missing}")
    for name, body in mod.variables.items():
        desc = body.get("description")
        if not isinstance(desc, str) or len(desc.strip()) < 10:
            problems.append(f"variable {name} has no description")
        if "type" not in body:
            problems.append(f"variable {name} has no type")
    for name, body in mod.outputs.items():
        if not str(body.get("description", "")).strip():
            problems.append(f"output {name} has no description")
        if "value" not in body:
            problems.append(f"output {name} has no value")
            continue
        refs = references(body["value"])
        if not any(refs.values()):
            problems.append(f"output {name} references no variable, local, resource, data source or module")
        for missing in unresolved(mod, body["value"]):
            problems.append(f"output {name} references undeclared {missing}")
    # Every variable and local is used somewhere (a knob that changes nothing misleads).
    used: dict[str, set] = {"var": set(), "local": set()}
    for doc in mod.files.values():
        refs = references(doc)
        used["var"] |= refs["var"]
        used["local"] |= refs["local"]
    for name in mod.variables:
        if name not in used["var"]:
            problems.append(f"variable {name} is never used")
    for name in mod.locals:
        if name not in used["local"]:
            problems.append(f"local {name} is never used")
    return problems


def provider_problems(mod: Module) -> list[str]:
    problems = []
    required: dict[str, dict] = {}
    required_version = None
    for block in mod.terraform:
        required_version = block.get("required_version", required_version)
        for rp in block.get("required_providers", []):
            required.update(rp)
        if "backend" in block:
            problems.append("a backend block in a .tf file makes remote state mandatory: keep it in backend.tf.example")
    if not required_version:
        problems.append("terraform.required_version is not set")
    for name, spec in required.items():
        if not isinstance(spec, dict) or not spec.get("source") or not spec.get("version"):
            problems.append(f"provider {name} has no source and version")
            continue
        version = spec["version"].strip()
        # "~> 5.80" or "= 5.80.0" (or a range with an upper bound); a bare ">= x" is not pinned.
        pinned = version.startswith(("~>", "=")) and not version.startswith("=>") or "<" in version
        if not pinned or not re.search(r"\d+\.\d+", version):
            problems.append(f"provider {name} version {version!r} is not pinned (use ~> X.Y)")
    used = {t.split("_", 1)[0] for t, _ in list(mod.resources) + list(mod.data)}
    for prefix in sorted(used - set(required)):
        problems.append(f"resources of provider {prefix} are used but {prefix} is not in required_providers")
    for name, body in mod.providers:
        for key in ("access_key", "secret_key", "token", "credentials", "access_token"):
            if key in body:
                problems.append(f"provider {name} sets {key}: credentials belong in the environment")
    return problems


SECRET_PATTERNS = [
    (re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])"), "a 12-digit AWS account id"),
    (re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA)[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"(?i)aws_secret_access_key|secret_access_key\s*="), "an AWS secret key setting"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r'"type"\s*:\s*"service_account"'), "a GCP service account key"),
    (re.compile(r'(?i)\b(?:master_)?password\s*=\s*"[^"$]'), "a literal password"),
]


def secret_problems(root: Path) -> list[str]:
    problems = []
    for f in sorted(root.rglob("*")):
        if not f.is_file() or ".terraform" in f.parts or ".build" in f.parts:
            continue
        try:
            text = f.read_text()
        except UnicodeDecodeError:
            continue
        for pattern, what in SECRET_PATTERNS:
            for m in pattern.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                problems.append(f"{f.relative_to(root)}:{line}: {what} ({m.group(0)[:24]!r})")
    return problems


def iam_problems(mod: Module) -> list[str]:
    """Allow statements name no wildcard action and no '*' resource."""
    problems = []
    for name, body in mod.data_of_type("aws_iam_policy_document").items():
        for st in body.get("statement", []):
            if st.get("effect", "Allow") == "Deny":
                continue
            for action in st.get("actions", []):
                if action == "*" or action.endswith(":*"):
                    problems.append(f"policy {name}: wildcard action {action}")
            resources = st.get("resources", [])
            if "*" in resources:
                problems.append(f"policy {name}: resource '*'")
    for (rtype, name), body in mod.resources.items():
        if rtype in ("aws_iam_role_policy_attachment", "aws_iam_policy_attachment"):
            arn = str(body.get("policy_arn", ""))
            if re.search(r"(AdministratorAccess|PowerUserAccess|FullAccess)\b", arn):
                problems.append(f"{rtype}.{name} attaches a broad managed policy {arn}")
    return problems


def _one(mod: Module, rtype: str, problems: list[str]) -> dict | None:
    found = mod.of_type(rtype)
    if len(found) != 1:
        problems.append(f"expected exactly one {rtype}, found {len(found)}")
        return None
    return next(iter(found.values()))


def _first(block: Any) -> dict:
    if isinstance(block, list):
        return block[0] if block else {}
    return block or {}


def frontend_upload_prefix() -> str:
    text = (REPO / "services" / "frontend" / "tickets.py").read_text()
    return re.search(r'^UPLOAD_PREFIX\s*=\s*"([^"]*)"', text, re.M).group(1)


def aws_problems(mod: Module) -> list[str]:
    p: list[str] = []

    # VPC: public, private and database subnets, NAT, over 2-3 AZs.
    subnets = mod.of_type("aws_subnet")
    for tier in ("public", "private", "database"):
        if tier not in subnets:
            p.append(f"no {tier} subnets (aws_subnet.{tier})")
    if not mod.of_type("aws_nat_gateway"):
        p.append("no NAT gateway")
    az = mod.resolve("${var.az_count}")
    if not isinstance(az, int) or not 2 <= az <= 3:
        p.append(f"az_count default {az!r} is not 2 or 3")

    # EKS 1.30 + managed node group + IRSA.
    eks = _one(mod, "aws_eks_cluster", p)
    if eks is not None:
        version = mod.resolve(eks.get("version"))
        if str(version) != "1.30":
            p.append(f"EKS version is {version!r}, not 1.30")
    if not mod.of_type("aws_eks_node_group"):
        p.append("no EKS managed node group")
    oidc = _one(mod, "aws_iam_openid_connect_provider", p)
    if oidc is not None and "sts.amazonaws.com" not in oidc.get("client_id_list", []):
        p.append("the OIDC provider does not accept sts.amazonaws.com (IRSA)")
    irsa_roles = mod.locals.get("irsa")
    if not isinstance(irsa_roles, dict) or not {"operator", *SERVICES} <= set(irsa_roles):
        p.append(f"IRSA roles do not cover the operator and every service: {sorted(irsa_roles or [])}")

    # MSK with 2 brokers.
    msk = _one(mod, "aws_msk_cluster", p)
    if msk is not None:
        brokers = mod.resolve(msk.get("number_of_broker_nodes"))
        if brokers != 2:
            p.append(f"MSK has {brokers!r} brokers, not 2")

    # RDS PostgreSQL 16, password never in files.
    rds = _one(mod, "aws_db_instance", p)
    if rds is not None:
        if rds.get("engine") != "postgres":
            p.append(f"RDS engine is {rds.get('engine')!r}, not postgres")
        version = str(mod.resolve(rds.get("engine_version")))
        if not re.fullmatch(r"16(\.\d+)?", version):
            p.append(f"RDS engine version is {version!r}, not PostgreSQL 16")
        if rds.get("manage_master_user_password") is not True:
            pw = rds.get("password", "")
            m = re.fullmatch(r"\$\{var\.([\w-]+)\}", str(pw))
            ok = (m and mod.variables.get(m.group(1), {}).get("sensitive") is True) or "random_password." in str(pw)
            if not ok:
                p.append("RDS password is neither managed by RDS, nor a sensitive variable, nor random_password")
        if rds.get("publicly_accessible") is True:
            p.append("RDS is publicly accessible")
        if rds.get("storage_encrypted") is not True:
            p.append("RDS storage is not encrypted")

    # DynamoDB users table, on demand, key userId.
    tables = {mod.resolve(b.get("name")): b for b in mod.of_type("aws_dynamodb_table").values()}
    users = tables.get("ticket-booking-users")
    if users is None:
        p.append(f"no DynamoDB table named ticket-booking-users (found {sorted(map(str, tables))})")
    else:
        if users.get("billing_mode") != "PAY_PER_REQUEST":
            p.append(f"DynamoDB billing_mode is {users.get('billing_mode')!r}, not PAY_PER_REQUEST")
        if users.get("hash_key") != "userId":
            p.append(f"DynamoDB hash_key is {users.get('hash_key')!r}, not userId")
        attrs = {a.get("name"): a.get("type") for a in users.get("attribute", [])}
        if attrs.get("userId") != "S":
            p.append("DynamoDB attribute userId is not declared as a string (S)")

    # S3 bucket + Lambda + ObjectCreated trigger that never fires on tickets/.
    if not mod.of_type("aws_s3_bucket"):
        p.append("no S3 bucket")
    pab = mod.of_type("aws_s3_bucket_public_access_block")
    if not pab or not all(all(b.get(k) is True for k in ("block_public_acls", "block_public_policy",
                                                             "ignore_public_acls", "restrict_public_buckets"))
                          for b in pab.values()):
        p.append("the S3 bucket does not block all public access")
    notif = _one(mod, "aws_s3_bucket_notification", p)
    if notif is not None:
        fns = notif.get("lambda_function", [])
        if not fns:
            p.append("the bucket notification invokes no Lambda")
        for fn in fns:
            events = fn.get("events", [])
            if not any(e.startswith("s3:ObjectCreated:") for e in events):
                p.append(f"the Lambda notification does not fire on ObjectCreated: {events}")
            prefix = mod.resolve(fn.get("filter_prefix"))
            if not isinstance(prefix, str) or not prefix:
                p.append("the Lambda notification has no filter_prefix, so it fires on tickets/ too")
            elif ("tickets/" + "x_TICKET.txt").startswith(prefix) or prefix.startswith("tickets/"):
                p.append(f"the Lambda notification prefix {prefix!r} matches tickets/")
            elif prefix != frontend_upload_prefix():
                p.append(f"the Lambda notification prefix {prefix!r} is not where the frontend uploads "
                         f"({frontend_upload_prefix()!r})")
    fn = _one(mod, "aws_lambda_function", p)
    if fn is not None:
        if fn.get("runtime") != "python3.11":
            p.append(f"Lambda runtime is {fn.get('runtime')!r}, not python3.11")
        handler = str(fn.get("handler"))
        module_path, _, func = handler.rpartition(".")
        source = REPO / "lambda" / (module_path.replace(".", "/") + ".py")
        if handler != "ticket_generator.handler.handler" or not source.is_file() or \
                not re.search(rf"^def {re.escape(func)}\(", source.read_text(), re.M):
            p.append(f"Lambda handler {handler!r} is not lambda/ticket_generator/handler.py:handler")
        if "data.archive_file." not in str(fn.get("source_code_hash", "")):
            p.append("the Lambda code is not packaged with archive_file (source_code_hash)")
    if not mod.data_of_type("archive_file"):
        p.append("no archive_file data source for the Lambda package")
    if not mod.of_type("aws_lambda_permission"):
        p.append("no aws_lambda_permission letting S3 invoke the function")

    # ECR repositories for the operator and the services.
    repos = mod.resolve("${var.ecr_repositories}")
    if not isinstance(repos, list) or set(repos) != {"operator", *SERVICES}:
        p.append(f"ECR repositories default {repos!r} is not the operator and the services")
    if not mod.of_type("aws_ecr_repository"):
        p.append("no ECR repositories")

    # Outputs the TicketPlatform spec needs.
    needed = {"cluster_name", "cluster_endpoint", "ecr_repository_urls", "msk_bootstrap_brokers", "rds_endpoint",
              "dynamodb_users_table_name", "uploads_bucket_name", "irsa_role_arns", "operator_role_arn"}
    for name in sorted(needed - set(mod.outputs)):
        p.append(f"missing output {name}")

    p += iam_problems(mod)
    return p


def gcp_problems(mod: Module) -> list[str]:
    p: list[str] = []
    if not mod.of_type("google_compute_network") or not mod.of_type("google_compute_subnetwork"):
        p.append("no network and subnet")
    firewalls = mod.of_type("google_compute_firewall")
    if not firewalls:
        p.append("no firewall rules")
    for name, fw in firewalls.items():
        if "0.0.0.0/0" in fw.get("source_ranges", []):
            p.append(f"firewall {name} is open to 0.0.0.0/0")

    cluster = _one(mod, "google_dataproc_cluster", p)
    if cluster is not None:
        config = _first(cluster.get("cluster_config"))
        software = _first(config.get("software_config"))
        if "FLINK" not in software.get("optional_components", []):
            p.append(f"Dataproc optional components {software.get('optional_components')!r} lack FLINK")
        image = str(mod.resolve(software.get("image_version")))
        m = re.match(r"(\d+)\.(\d+)", image)
        if not m or (int(m.group(1)), int(m.group(2))) < (2, 2):
            p.append(f"Dataproc image version {image!r} is older than 2.2")
        gce = _first(config.get("gce_cluster_config"))
        sa = str(gce.get("service_account", ""))
        if "google_service_account." not in sa:
            p.append("the Dataproc cluster does not run as the stack's own service account")

    roles = {(b.get("role"), b.get("member")) for b in mod.of_type("google_project_iam_member").values()}
    if not any(r == "roles/dataproc.worker" and "google_service_account.dataproc" in str(m) for r, m in roles):
        p.append("the Dataproc service account lacks roles/dataproc.worker")
    for r, _ in roles:
        if r in ("roles/owner", "roles/editor", "roles/storage.admin", "roles/dataproc.admin"):
            p.append(f"broad project role {r}")
    bucket_roles = [b.get("role") for b in mod.of_type("google_storage_bucket_iam_member").values()]
    if not any(str(r).startswith("roles/storage.object") for r in bucket_roles):
        p.append("the service account has no object access on the bucket")

    buckets = mod.of_type("google_storage_bucket")
    if not buckets:
        p.append("no GCS bucket for job artifacts")
    for name, b in buckets.items():
        if b.get("uniform_bucket_level_access") is not True or b.get("public_access_prevention") != "enforced":
            p.append(f"bucket {name} is not private (uniform access, public access prevention)")

    job_file = mod.resolve("${local.job_file_source}")
    if not isinstance(job_file, str) or not (REPO / "flink" / "analytics_job.py").is_file() or \
            not job_file.endswith("/flink/analytics_job.py"):
        p.append(f"the job file object does not upload flink/analytics_job.py ({job_file!r})")

    needed = {"projectId", "region", "cluster", "jobFileUri", "connectorJarUri"}
    for name in sorted(needed - set(mod.outputs)):
        p.append(f"missing output {name}")
    jar = mod.outputs.get("connectorJarUri", {}).get("value", "")
    if not (str(jar).startswith("gs://") and str(mod.resolve("${var.connector_jar_object}")).endswith(".jar")):
        p.append("connectorJarUri is not a gs:// URI of a .jar")
    return p


# ---------------------------------------------------------------------------------------------
# Tests on the real modules
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def aws() -> Module:
    return load_module(AWS_DIR)


@pytest.fixture(scope="module")
def gcp() -> Module:
    return load_module(GCP_DIR)


@pytest.mark.parametrize("path", sorted(TF_DIR.rglob("*.tf")) + sorted(TF_DIR.rglob("*.tf.example"))
                         + sorted(TF_DIR.rglob("*.tfvars.example")) + sorted(TF_DIR.rglob("*.hcl.example")),
                         ids=lambda p: str(p.relative_to(TF_DIR)))
def test_every_hcl_file_parses(path: Path) -> None:
    assert isinstance(hcl2.loads(path.read_text(), serialization_options=OPTS), dict)


@pytest.mark.parametrize("name", ["aws", "gcp"])
def test_references_descriptions_and_outputs(name: str, request) -> None:
    mod = request.getfixturevalue(name)
    assert mod.variables and mod.outputs
    assert generic_problems(mod) == []


@pytest.mark.parametrize("name", ["aws", "gcp"])
def test_providers_pinned_and_backend_optional(name: str, request) -> None:
    mod = request.getfixturevalue(name)
    assert provider_problems(mod) == []
    example = mod.path / "backend.tf.example"
    doc = hcl2.loads(example.read_text(), serialization_options=OPTS)
    backends = [b for t in doc["terraform"] for b in t.get("backend", [])]
    assert backends and set(backends[0]) <= {"s3", "gcs"}, backends
    assert (mod.path / "backend.hcl.example").is_file()


@pytest.mark.parametrize("name", ["aws", "gcp"])
def test_variable_files_examples_only_set_declared_variables(name: str, request) -> None:
    mod = request.getfixturevalue(name)
    example = hcl2.loads((mod.path / "terraform.tfvars.example").read_text(), serialization_options=OPTS)
    assert set(example) <= set(mod.variables), set(example) - set(mod.variables)


def test_no_hard_coded_account_ids_keys_or_passwords() -> None:
    assert secret_problems(TF_DIR) == []


def test_aws_resources(aws: Module) -> None:
    assert aws_problems(aws) == []


def test_gcp_resources(gcp: Module) -> None:
    assert gcp_problems(gcp) == []


def test_gcp_outputs_cover_the_dataproc_spec(gcp: Module) -> None:
    """The output names are exactly the fields of spec.analytics.dataproc (the pydantic model)."""
    model = pytest.importorskip("ticketplatform_operator.model")
    fields = set(model.DataprocSpec.model_fields)
    assert fields <= set(gcp.outputs), fields - set(gcp.outputs)
    assert set(gcp.outputs["dataproc_spec"]["value"]) == fields


def test_production_example_names_the_same_things(aws: Module, gcp: Module) -> None:
    """examples/production.yaml uses the repository layout and table name this stack makes."""
    yaml = pytest.importorskip("yaml")
    spec = yaml.safe_load((REPO / "examples" / "production.yaml").read_text())["spec"]
    namespace = aws.resolve("${var.ecr_namespace}")
    for svc in SERVICES:
        image = spec["services"][svc]["image"]
        assert f".amazonaws.com/{namespace}/{svc}:" in image, image
    assert set(spec["analytics"]["dataproc"]) == {"projectId", "region", "cluster", "jobFileUri", "connectorJarUri"}
    assert spec["analytics"]["dataproc"]["cluster"] == gcp.resolve("${var.cluster_name}")
    assert spec["analytics"]["dataproc"]["jobFileUri"].endswith("/analytics_job.py")


def test_lambda_package_holds_the_handler_module(aws: Module) -> None:
    """archive_file zips lambda/ticket_generator/*.py (minus the local invoker) under ticket_generator/."""
    files = sorted(p.name for p in (REPO / "lambda" / "ticket_generator").glob("*.py"))
    assert {"__init__.py", "handler.py"} <= set(files)
    assert "local_invoker.py" in aws.locals["lambda_files"]  # excluded by setsubtract
    archive = aws.data_of_type("archive_file")["ticket_generator"]
    source = archive["dynamic"][0]["source"]
    assert source["for_each"] == "${local.lambda_files}"
    assert source["content"][0]["filename"] == "ticket_generator/${source.value}"
    assert aws.locals["lambda_src"].endswith("/lambda/ticket_generator")


# ---------------------------------------------------------------------------------------------
# OpenTofu, when it has been built here (stack/terraform.sh)
# ---------------------------------------------------------------------------------------------
def _tofu() -> str | None:
    try:
        out = subprocess.run(["bash", str(REPO / "stack" / "terraform.sh"), "path"], capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    path = out.stdout.strip()
    return path if out.returncode == 0 and path and os.access(path, os.X_OK) else None


def _tofu_env() -> dict[str, str]:
    env = dict(os.environ)
    cfg = env.get("TF_CLI_CONFIG_FILE")
    if cfg and not Path(cfg).is_file():
        env["TF_CLI_CONFIG_FILE"] = os.devnull  # a named but missing CLI config only prints a warning
    return env


def test_tofu_fmt_check() -> None:
    tofu = _tofu()
    if tofu is None:
        pytest.skip("OpenTofu is not built here: run stack/terraform.sh (builds it from its Go module)")
    res = subprocess.run([tofu, "fmt", "-check", "-recursive", "-diff", str(TF_DIR)], capture_output=True,
                         text=True, timeout=120, env=_tofu_env())
    assert res.returncode == 0, res.stdout + res.stderr


def test_tofu_validate() -> None:
    """Needs the providers (registry.opentofu.org), which this machine cannot reach: opt-in."""
    tofu = _tofu()
    if tofu is None or os.environ.get("TP_TOFU_VALIDATE") != "1":
        pytest.skip("tofu validate needs provider plugins from the registry; set TP_TOFU_VALIDATE=1 where "
                    "it is reachable (stack/terraform.sh validate)")
    res = subprocess.run(["bash", str(REPO / "stack" / "terraform.sh"), "validate"], capture_output=True,
                         text=True, timeout=900)
    assert res.returncode == 0, res.stdout + res.stderr


# ---------------------------------------------------------------------------------------------
# Mutation tests: a wrong value in a copy of a module makes the matching check fail
# ---------------------------------------------------------------------------------------------
APPENDED_OUTPUT_VAR = '\noutput "x" {\n  description = "x"\n  value       = var.nope\n}\n'
APPENDED_OUTPUT_RES = '\noutput "y" {\n  description = "y"\n  value       = aws_s3_bucket.missing.id\n}\n'
APPENDED_VAR_NO_DESC = '\nvariable "undocumented" {\n  type = string\n}\n'

MUTATIONS = [
    # (id, module, file, old, new (None: append `old` to the file), expected problem substring)
    ("eks-1.29", "aws", "variables.tf", 'default     = "1.30"', 'default     = "1.29"', "EKS version is '1.29'"),
    ("msk-3-brokers", "aws", "msk.tf", "number_of_broker_nodes = var.msk_broker_count",
     "number_of_broker_nodes = 3", "MSK has 3 brokers"),
    ("rds-15", "aws", "variables.tf", 'default     = "16"', 'default     = "15"', "not PostgreSQL 16"),
    ("rds-password", "aws", "rds.tf", "manage_master_user_password = true", "password = var.db_name",
     "RDS password"),
    ("dynamodb-provisioned", "aws", "dynamodb.tf", '"PAY_PER_REQUEST"', '"PROVISIONED"', "not PAY_PER_REQUEST"),
    ("dynamodb-key", "aws", "dynamodb.tf", 'hash_key     = "userId"', 'hash_key     = "id"', "hash_key is 'id'"),
    ("dynamodb-name", "aws", "variables.tf", '"ticket-booking-users"', '"users"', "ticket-booking-users"),
    ("s3-no-prefix", "aws", "s3_lambda.tf", "filter_prefix       = var.uploads_prefix", "", "no filter_prefix"),
    ("s3-tickets-prefix", "aws", "s3_lambda.tf", "filter_prefix       = var.uploads_prefix",
     'filter_prefix       = "tickets/"', "matches tickets/"),
    ("s3-root-prefix", "aws", "s3_lambda.tf", "filter_prefix       = var.uploads_prefix",
     'filter_prefix       = "t"', "matches tickets/"),
    ("lambda-handler", "aws", "s3_lambda.tf", '"ticket_generator.handler.handler"', '"handler.handler"',
     "Lambda handler"),
    ("lambda-runtime", "aws", "s3_lambda.tf", '"python3.11"', '"python3.9"', "not python3.11"),
    ("iam-wildcard", "aws", "irsa.tf", '"dynamodb:GetItem"', '"dynamodb:*"', "wildcard action dynamodb:*"),
    ("iam-star-resource", "aws", "irsa.tf", "resources = [aws_dynamodb_table.users.arn]", 'resources = ["*"]',
     "resource '*'"),
    ("undeclared-var", "aws", "outputs.tf", APPENDED_OUTPUT_VAR, None, "undeclared var.nope"),
    ("missing-resource", "aws", "outputs.tf", APPENDED_OUTPUT_RES, None, "undeclared aws_s3_bucket.missing"),
    ("undeclared-local", "aws", "msk.tf", "local.cluster_name}-kafka", "local.clustername}-kafka",
     "undeclared local.clustername"),
    ("no-description", "aws", "variables.tf", APPENDED_VAR_NO_DESC, None, "variable undocumented has no description"),
    ("unused-variable", "gcp", "variables.tf", APPENDED_VAR_NO_DESC, None, "variable undocumented is never used"),
    ("unpinned-aws", "aws", "versions.tf", 'version = "~> 5.80"', 'version = ">= 5.0"', "is not pinned"),
    ("no-version-gcp", "gcp", "versions.tf", 'version = "~> 6.20"', "", "has no source and version"),
    ("mandatory-backend", "aws", "versions.tf", 'required_version = ">= 1.6.0"',
     'required_version = ">= 1.6.0"\n  backend "s3" {}', "remote state mandatory"),
    ("dataproc-no-flink", "gcp", "main.tf", 'optional_components = ["FLINK"]',
     'optional_components = ["ZEPPELIN"]', "lack FLINK"),
    ("dataproc-old-image", "gcp", "variables.tf", 'default     = "2.2-debian12"', 'default     = "2.1-debian11"',
     "older than 2.2"),
    ("gcp-owner", "gcp", "main.tf", '"roles/dataproc.worker"', '"roles/owner"', "broad project role roles/owner"),
    ("gcp-open-firewall", "gcp", "main.tf", '["35.235.240.0/20"]', '["0.0.0.0/0"]', "open to 0.0.0.0/0"),
    ("gcp-output-missing", "gcp", "outputs.tf", 'output "connectorJarUri"', 'output "connector_jar"',
     "missing output connectorJarUri"),
]


def _mutated(tmp_path: Path, module: str, fname: str, old: str, new: str | None) -> Path:
    src = AWS_DIR if module == "aws" else GCP_DIR
    dst = tmp_path / module
    shutil.copytree(src, dst)
    target = dst / fname
    text = target.read_text()
    if new is None:
        target.write_text(text + old)
    else:
        assert text.count(old) == 1, f"mutation anchor {old!r} must occur once in {fname}"
        target.write_text(text.replace(old, new))
    return dst


@pytest.mark.parametrize("case", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_checks_catch_a_wrong_value(case, tmp_path: Path) -> None:
    _, module, fname, old, new, expected = case
    mod = load_module(_mutated(tmp_path, module, fname, old, new))
    specific = aws_problems(mod) if module == "aws" else gcp_problems(mod)
    problems = generic_problems(mod) + provider_problems(mod) + specific
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("line, expected", [
    ("# role arn:aws:iam::123456789012:role/x\n", "12-digit"),
    ('access_key = "AKIAABCDEFGHIJKLMNOP"\n', "access key id"),
    ('  password = "hunter2hunter2"\n', "literal password"),
])
def test_secret_scan_catches_hard_coded_values(line: str, expected: str, tmp_path: Path) -> None:
    dst = tmp_path / "terraform"
    shutil.copytree(TF_DIR, dst, ignore=shutil.ignore_patterns(".terraform", ".build"))
    (dst / "aws" / "rds.tf").write_text((dst / "aws" / "rds.tf").read_text() + line)
    assert any(expected in p for p in secret_problems(dst))
