"""FakeKubernetesApi: the custom-object calls of ``kubernetes.client.CustomObjectsApi``, answered as the API
server answers them, because no API server can run on these machines.

What it rejects, as the real API server does (with the same HTTP status in a ``kubernetes`` ``ApiException``):

- a create or patch whose resulting object does not validate against the CRD's structural schema
  (``deploy_crd_schema``: required fields, types, enums, unknown fields where the schema closes an object)
  → 422; metadata the API server checks itself (labels, annotation values, names) → 422;
- a body whose apiVersion/kind is not the URL's resource, or whose namespace differs from the URL's → 400;
- create of an existing name → 409; get or patch of a missing one → 404;
- a keyword argument the real method does not take → ``ApiTypeError``, as the generated client raises.

``CustomObjectsApi.patch_namespaced_custom_object`` (kubernetes 30) always sends
``Content-Type: application/merge-patch+json`` (test_deploy_contract checks that on the real client), so a
patch is applied as RFC 7386 (objects merged, ``null`` deletes, lists replaced); a body that is not an object
is refused. The *result* is validated: the API server validates the patched object, not the patch.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from deploy_crd_schema import CrdValidator
from kubernetes.client.exceptions import ApiException, ApiTypeError

MERGE_PATCH = "application/merge-patch+json"
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                             r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
MAX_ANNOTATIONS_BYTES = 256 * 1024
#: Keyword arguments the generated CustomObjectsApi methods accept besides the positional ones.
CLIENT_KWARGS = {
    "pretty",
    "dry_run",
    "field_manager",
    "field_validation",
    "async_req",
    "_return_http_data_only",
    "_preload_content",
    "_request_timeout",
}


def api_error(status: int, reason: str, message: str) -> ApiException:
    error = ApiException(status=status, reason=reason)
    error.body = json.dumps({"kind": "Status", "status": "Failure", "message": message, "code": status})
    return error


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


def _check_kwargs(method: str, kwargs: dict[str, Any]) -> None:
    for key in kwargs.keys() - CLIENT_KWARGS:
        raise ApiTypeError(f"Got an unexpected keyword argument '{key}' to method {method}")


def metadata_errors(metadata: dict[str, Any]) -> list[str]:
    """What the API server's ObjectMeta validation says about labels and annotations."""
    problems = []
    for key, value in (metadata.get("labels") or {}).items():
        if not _QUALIFIED_NAME.match(key):
            problems.append(f"metadata.labels: invalid key {key!r}")
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            problems.append(f"metadata.labels.{key}: invalid value {value!r}")
    annotations = metadata.get("annotations") or {}
    for key, value in annotations.items():
        if not _QUALIFIED_NAME.match(key):
            problems.append(f"metadata.annotations: invalid key {key!r}")
        if not isinstance(value, str):
            problems.append(f"metadata.annotations.{key}: must be a string, got {type(value).__name__}")
    size = sum(len(k) + len(str(v)) for k, v in annotations.items())
    if size > MAX_ANNOTATIONS_BYTES:
        problems.append(f"metadata.annotations: total size {size} exceeds {MAX_ANNOTATIONS_BYTES}")
    return problems


class FakeKubernetesApi:
    """Namespaced custom objects of the kinds in ``validators`` (plural → kind via ``plurals``)."""

    def __init__(self, validators: dict[tuple[str, str], CrdValidator], plurals: dict[str, str]) -> None:
        self.validators = validators
        self.plurals = plurals
        self.objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, Any]] = []

    # -------------------------------------------------------------------------------------------- API

    def get_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str,
                                     name: str) -> dict[str, Any]:
        key = self._key(group, version, namespace, plural, name)
        if key not in self.objects:
            raise api_error(404, "Not Found", f'{plural}.{group} "{name}" not found')
        return copy.deepcopy(self.objects[key])

    def create_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str,
                                        body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        _check_kwargs("create_namespaced_custom_object", kwargs)
        self.calls.append(("create", copy.deepcopy(body)))
        obj = copy.deepcopy(body)
        name = (obj.get("metadata") or {}).get("name", "")
        self._check_target(group, version, namespace, plural, obj)
        key = self._key(group, version, namespace, plural, name)
        if key in self.objects:
            raise api_error(409, "Conflict", f'{plural}.{group} "{name}" already exists')
        obj["metadata"]["namespace"] = namespace
        self._validate(group, version, plural, obj)
        obj["metadata"].update(
            {"resourceVersion": "1", "generation": 1, "uid": f"uid-{len(self.objects) + 1}"}
        )
        self.objects[key] = obj
        return copy.deepcopy(obj)

    def patch_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str, name: str,
                                       body: Any, **kwargs: Any) -> dict[str, Any]:
        _check_kwargs("patch_namespaced_custom_object", kwargs)
        self.calls.append(("patch", copy.deepcopy(body)))
        if not isinstance(body, dict):
            raise api_error(400, "Bad Request", f"a {MERGE_PATCH} body must be a JSON object")
        key = self._key(group, version, namespace, plural, name)
        if key not in self.objects:
            raise api_error(404, "Not Found", f'{plural}.{group} "{name}" not found')
        live = self.objects[key]
        patched = merge(live, body)
        self._check_target(group, version, namespace, plural, patched)
        if patched["metadata"].get("name") != name:
            raise api_error(400, "Bad Request", f"the name of the object ({patched['metadata'].get('name')}) "
                            f"does not match the name on the URL ({name})")
        self._validate(group, version, plural, patched)
        meta = patched["metadata"]
        meta["resourceVersion"] = str(int(live["metadata"]["resourceVersion"]) + 1)
        if patched.get("spec") != live.get("spec"):
            meta["generation"] = live["metadata"]["generation"] + 1
        self.objects[key] = patched
        return copy.deepcopy(patched)

    # -------------------------------------------------------------------------------------------- checks

    def _key(
        self, group: str, version: str, namespace: str, plural: str, name: str
    ) -> tuple[str, str, str, str]:
        if plural not in self.plurals:
            raise api_error(
                404, "Not Found", f"the server could not find the requested resource ({plural}.{group})"
            )
        return (f"{group}/{version}", plural, namespace, name)

    def _check_target(
        self, group: str, version: str, namespace: str, plural: str, obj: dict[str, Any]
    ) -> None:
        api_version, kind = f"{group}/{version}", self.plurals[plural]
        if obj.get("apiVersion") != api_version or obj.get("kind") != kind:
            raise api_error(400, "Bad Request", f"the API version/kind in the body ({obj.get('apiVersion')}, "
                            f"{obj.get('kind')}) does not match the URL ({api_version}, {kind})")
        if not isinstance(obj.get("metadata"), dict) or not obj["metadata"].get("name"):
            raise api_error(422, "Unprocessable Entity", "metadata.name: Required value")
        body_namespace = obj["metadata"].get("namespace")
        if body_namespace not in (None, namespace):
            raise api_error(
                400,
                "Bad Request",
                f"the namespace of the provided object ({body_namespace}) does "
                f"not match the namespace sent on the request ({namespace})",
            )

    def _validate(self, group: str, version: str, plural: str, obj: dict[str, Any]) -> None:
        validator = self.validators[(f"{group}/{version}", self.plurals[plural])]
        problems = validator.errors(obj) + metadata_errors(obj["metadata"])
        if problems:
            raise api_error(422, "Unprocessable Entity",
                            f"{self.plurals[plural]}.{group} \"{obj['metadata']['name']}\" is invalid: "
                            + "; ".join(problems))
