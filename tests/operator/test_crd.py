"""The committed CRD is the one the model generates, and it documents every field."""
from __future__ import annotations

from pathlib import Path

import yaml

from ticketplatform_operator.crd import crd, crd_yaml

CRD_FILE = Path(__file__).resolve().parents[2] / "crds" / "ticketplatform.yaml"


def test_committed_crd_equals_generated():
    assert CRD_FILE.read_text() == crd_yaml(), "regenerate with: ticketctl crd > crds/ticketplatform.yaml"


def _undocumented(schema, path):
    for name, sub in (schema.get("properties") or {}).items():
        if name != "metadata" and not sub.get("description"):
            yield f"{path}.{name}"
        yield from _undocumented(sub, f"{path}.{name}")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _undocumented(schema["additionalProperties"], f"{path}[*]")
    if "items" in schema:
        yield from _undocumented(schema["items"], f"{path}[]")


def test_every_field_has_a_description():
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert list(_undocumented(schema, "")) == []


def test_schema_is_structural():
    text = yaml.safe_dump(crd())
    for forbidden in ("$ref", "anyOf", "title:", "const:"):
        assert forbidden not in text


def test_explain_documents_fields(controlplane, crd):
    out = controlplane.kubectl("explain", "tp.spec.kafka.deletionPolicy").stdout
    assert "What happens to the topics when the TicketPlatform is deleted" in out
