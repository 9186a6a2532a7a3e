"""Kubernetes API payloads for the API-server stand-in: discovery, a fake pod, Status, SelfSubjectReview.

Only what kubectl 1.27-1.33 needs for ``get pods`` and ``auth whoami``. Discovery is served in
the legacy (unaggregated) form: kubectl asks for aggregated discovery first and falls back when the
answer's Content-Type is plain ``application/json``, as it does against older servers.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

__all__ = [
    "AUTHN_GROUP",
    "AUTHN_VERSIONS",
    "version_info",
    "api_versions",
    "api_group_list",
    "core_resources",
    "authn_resources",
    "status",
    "pod",
    "pod_list",
    "pod_table",
    "wants_table",
    "self_subject_review",
]

AUTHN_GROUP = "authentication.k8s.io"
# kubectl 1.27 asks for SelfSubjectReview in v1alpha1/v1beta1; 1.28+ in v1.
AUTHN_VERSIONS = ("v1", "v1beta1", "v1alpha1")
# The fake pod was created at a fixed time so the AGE column never reads "<invalid>".
_CREATED = "2024-01-01T00:00:00Z"


def version_info(git_version: str) -> dict[str, str]:
    """``GET /version``: the gcloud kubectl dispatcher picks its kubectl from this."""
    match = re.match(r"v(\d+)\.(\d+)", git_version)
    major, minor = (match.group(1), match.group(2)) if match else ("1", "32")
    return {
        "major": major,
        "minor": minor,
        "gitVersion": git_version,
        "gitCommit": "0" * 40,
        "gitTreeState": "clean",
        "buildDate": "2024-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> dict[str, Any]:
    """``GET /api``."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def api_group_list() -> dict[str, Any]:
    """``GET /apis``: only authentication.k8s.io, which ``auth whoami`` looks for."""
    versions = [{"groupVersion": f"{AUTHN_GROUP}/{v}", "version": v} for v in AUTHN_VERSIONS]
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [{"name": AUTHN_GROUP, "versions": versions, "preferredVersion": versions[0]}],
    }


def core_resources() -> dict[str, Any]:
    """``GET /api/v1``."""
    return {
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {
                "name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
                "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                "shortNames": ["po"], "categories": ["all"],
            },
            {
                "name": "namespaces", "singularName": "namespace", "namespaced": False, "kind": "Namespace",
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"], "shortNames": ["ns"],
            },
        ],
    }


def authn_resources(version: str) -> dict[str, Any]:
    """``GET /apis/authentication.k8s.io/<version>``."""
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{AUTHN_GROUP}/{version}",
        "resources": [
            {
                "name": "selfsubjectreviews", "singularName": "selfsubjectreview", "namespaced": False,
                "kind": "SelfSubjectReview", "verbs": ["create"],
            }
        ],
    }


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    """A ``v1 Status`` failure body, as kube-apiserver sends with every error."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def pod(namespace: str, name: str = "hello-kubetray") -> dict[str, Any]:
    """The one fake pod every namespace holds."""
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": "5a1d0c3e-7b2f-4e8a-9c6d-1f0e2d3c4b5a",
            "resourceVersion": "1000",
            "creationTimestamp": _CREATED,
            "labels": {"app": "hello-kubetray"},
        },
        "spec": {"containers": [{"name": "hello", "image": "registry.invalid/hello:1"}], "nodeName": "node-0"},
        "status": {
            "phase": "Running",
            "podIP": "10.244.0.7",
            "startTime": _CREATED,
            "containerStatuses": [
                {"name": "hello", "ready": True, "restartCount": 0, "image": "registry.invalid/hello:1",
                 "imageID": "", "started": True, "state": {"running": {"startedAt": _CREATED}}}
            ],
        },
    }


def pod_list(namespace: str) -> dict[str, Any]:
    """A ``PodList`` (what ``-o json`` and client libraries get)."""
    return {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1000"}, "items": [pod(namespace)]}


def wants_table(accept: str) -> bool:
    """Whether the Accept header asks for server-side printing (``as=Table``), as ``kubectl get`` does."""
    return any("as=Table" in part and "g=meta.k8s.io" in part for part in accept.split(","))


def _age(created: str) -> str:
    start = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
    days = (dt.datetime.now(dt.timezone.utc) - start).days
    return f"{days}d"


def pod_table(namespace: str) -> dict[str, Any]:
    """A ``meta.k8s.io/v1 Table`` of the fake pod with kube-apiserver's pod columns."""
    item = pod(namespace)
    columns = [
        ("Name", "name", 0), ("Ready", "", 0), ("Status", "", 0), ("Restarts", "", 0), ("Age", "", 0),
        ("IP", "", 1), ("Node", "", 1),
    ]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": "1000"},
        "columnDefinitions": [
            {"name": n, "type": "string", "format": f, "description": n, "priority": p} for n, f, p in columns
        ],
        "rows": [
            {
                "cells": [item["metadata"]["name"], "1/1", "Running", "0", _age(_CREATED), "10.244.0.7", "node-0"],
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": item["metadata"],
                },
            }
        ],
    }


def self_subject_review(version: str, user_info: dict[str, Any]) -> dict[str, Any]:
    """The answer to ``POST .../selfsubjectreviews``: who the bearer token says the caller is."""
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "kind": "SelfSubjectReview",
        "apiVersion": f"{AUTHN_GROUP}/{version}",
        "metadata": {"creationTimestamp": now},
        "status": {"userInfo": user_info},
    }
