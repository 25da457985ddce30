"""Validate custom resources offline against the OpenAPI v3 schemas of their published CRDs.

An API server validates a custom resource with ``spec.versions[].schema.openAPIV3Schema`` of its CRD and
prunes fields the schema does not know. Here the same schema becomes a JSON Schema (draft 7):

- ``x-kubernetes-int-or-string: true`` accepts an integer or a string;
- ``x-kubernetes-preserve-unknown-fields: true`` keeps an object open to any field;
- every other object with ``properties`` is closed (``additionalProperties: false``), so a misspelt
  field fails here instead of being silently pruned on the cluster (``kubectl apply --validate=strict``);
- ``nullable: true`` also accepts null.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

# libyaml when present: the KServe CRD alone is 2 MB of YAML.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
DNS_1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def to_json_schema(node: Any) -> Any:
    """A JSON Schema equivalent of one structural OpenAPI v3 schema node (recursively)."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: to_json_schema(value) for key, value in node.items() if not key.startswith("x-kubernetes-")}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    if (
        node.get("type") == "object"
        and "properties" in node
        and "additionalProperties" not in node
        and not preserve
    ):
        out["additionalProperties"] = False
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
    out.pop("nullable", None)
    return out


class CrdValidator:
    """Validates objects of one served version of one CRD."""

    def __init__(self, group: str, version: str, kind: str, schema: dict[str, Any]) -> None:
        self.api_version = f"{group}/{version}"
        self.kind = kind
        converted = to_json_schema(schema)
        # The API server validates metadata itself; the CRD schema only says "object".
        converted.setdefault("properties", {})["metadata"] = {"type": "object"}
        jsonschema.Draft7Validator.check_schema(converted)
        self._validator = jsonschema.Draft7Validator(converted)

    def errors(self, obj: dict[str, Any]) -> list[str]:
        """Every problem of ``obj``, each with the path of the offending field; [] when valid."""
        problems = [
            f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
            for error in sorted(
                self._validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))
            )
        ]
        name = obj.get("metadata", {}).get("name", "")
        if not DNS_1123_SUBDOMAIN.match(name) or len(name) > 253:
            problems.append(f"metadata.name: {name!r} is not a DNS-1123 subdomain")
        return problems


def load_crd_validators(directory: Path) -> dict[tuple[str, str], CrdValidator]:
    """(apiVersion, kind) -> validator, for every served version of every CRD file in ``directory``."""
    validators: dict[tuple[str, str], CrdValidator] = {}
    for path in sorted(directory.glob("*.yaml")):
        for crd in yaml.load_all(path.read_text(), Loader=SAFE_LOADER):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            for version in spec["versions"]:
                if version.get("served", True):
                    validator = CrdValidator(
                        spec["group"],
                        version["name"],
                        spec["names"]["kind"],
                        version["schema"]["openAPIV3Schema"],
                    )
                    validators[(validator.api_version, validator.kind)] = validator
    return validators
