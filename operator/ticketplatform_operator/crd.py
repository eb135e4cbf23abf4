"""Generates the TicketPlatform CRD from the pydantic model (never edited by hand).

Pydantic emits JSON Schema; Kubernetes wants a structural OpenAPI v3 schema: no $ref, no anyOf
for optionals (nullable instead), no titles. Nested objects carry their full default (the
apiserver validates a default as written, without filling in the defaults inside it).
"""
from __future__ import annotations

import copy
from typing import Any

import yaml
from pydantic.json_schema import GenerateJsonSchema

from . import model


class _WithFactoryDefaults(GenerateJsonSchema):
    """Pydantic leaves default_factory defaults out of the schema; the CRD needs them."""

    def default_schema(self, schema):  # type: ignore[no-untyped-def]
        if "default_factory" in schema and not schema.get("default_factory_takes_data"):
            factory = schema["default_factory"]
            schema = {k: v for k, v in schema.items() if k != "default_factory"}
            schema["default"] = factory()
        return super().default_schema(schema)


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value

_KEEP = {
    "type", "description", "default", "enum", "pattern", "minimum", "maximum", "minLength",
    "maxLength", "maxProperties", "maxItems", "properties", "required", "additionalProperties", "items", "nullable",
    "x-kubernetes-validations", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string", "format",
}


def _structural(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        ref = defs[schema["$ref"].split("/")[-1]]
        merged = {**copy.deepcopy(ref), **{k: v for k, v in schema.items() if k != "$ref"}}
        return _structural(merged, defs)
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express anyOf {schema['anyOf']} structurally")
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        merged = {**_structural(options[0], defs), **rest, "nullable": True}
        if merged.get("default", "") is None:
            del merged["default"]
        return _structural_tidy(merged, defs)
    if "const" in schema:
        schema = {**schema, "enum": [schema["const"]]}
    return _structural_tidy(schema, defs)


def _structural_tidy(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in schema.items() if k in _KEEP}
    if "default" in out:
        out["default"] = _drop_none(out["default"])
    if "properties" in out:
        out["type"] = "object"
        props = {}
        for name, sub in out["properties"].items():
            props[name] = _structural(sub, defs)
        out["properties"] = props
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _structural(out["additionalProperties"], defs)
    elif out.get("additionalProperties") is False:
        del out["additionalProperties"]  # structural schemas reject unknown fields by pruning/strict validation
    if "items" in out:
        out["items"] = _structural(out["items"], defs)
    if out.get("type") == "integer":
        out.setdefault("format", "int32")
    return out


def openapi_schema(model_cls: type) -> dict[str, Any]:
    raw = model_cls.model_json_schema(by_alias=True, schema_generator=_WithFactoryDefaults)
    return _structural(raw, raw.get("$defs", {}))


def crd() -> dict[str, Any]:
    spec_schema = openapi_schema(model.TicketPlatformSpec)
    spec_schema["description"] = "Desired state of the ticketing platform; every field has a default."
    spec_schema["default"] = {}
    status_schema = openapi_schema(model.TicketPlatformStatus)
    status_schema["description"] = "State the operator observes; written by the operator only."
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{model.PLURAL}.{model.GROUP}",
            "labels": {"app.kubernetes.io/part-of": "ticketplatform"},
        },
        "spec": {
            "group": model.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": model.KIND,
                "listKind": f"{model.KIND}List",
                "plural": model.PLURAL,
                "singular": model.SINGULAR,
                "shortNames": model.SHORT_NAMES,
                "categories": ["ticketing"],
            },
            "versions": [{
                "name": model.VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "description": "Overall phase."},
                    {"name": "Services", "type": "string", "jsonPath": ".status.readyServices", "description": f"Ready services out of {len(model.SERVICE_NAMES)}."},
                    {"name": "Analytics", "type": "string", "jsonPath": ".status.analytics.state", "description": "State of the analytics job."},
                    {"name": "URL", "type": "string", "jsonPath": ".status.url", "description": "URL of the UI."},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "TicketPlatform runs an event-ticketing platform (web services, Kafka topics, a Flink analytics job) from one object.",
                    "properties": {
                        "apiVersion": {"type": "string", "description": "APIVersion of this representation of the object."},
                        "kind": {"type": "string", "description": "Kind of the object: TicketPlatform."},
                        "metadata": {"type": "object"},
                        "spec": spec_schema,
                        "status": status_schema,
                    },
                }},
            }],
        },
    }


def crd_yaml() -> str:
    header = "# Generated from operator/ticketplatform_operator/model.py by `ticketctl crd`; do not edit.\n"
    return header + yaml.safe_dump(crd(), sort_keys=False, width=120)
