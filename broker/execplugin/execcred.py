"""ExecCredential replies for kubectl, in the apiVersion kubectl asked for."""

from __future__ import annotations

import json
import time
from typing import NamedTuple

from broker.core.errors import BadRequest

API_V1 = "client.authentication.k8s.io/v1"
API_V1BETA1 = "client.authentication.k8s.io/v1beta1"
SUPPORTED_API_VERSIONS = (API_V1, API_V1BETA1)


class ExecInfo(NamedTuple):
    """What kubectl told the plugin in KUBERNETES_EXEC_INFO (a NamedTuple: read before dataclasses load)."""

    api_version: str
    interactive: bool | None
    cluster_server: str = ""


def parse_exec_info(raw: str | None) -> ExecInfo:
    """Parse KUBERNETES_EXEC_INFO; absent means v1beta1 with unknown interactivity (client-go's default)."""
    if not raw:
        return ExecInfo(api_version=API_V1BETA1, interactive=None)
    try:
        doc = json.loads(raw)
        api_version = doc.get("apiVersion") or API_V1BETA1
        spec = doc.get("spec") or {}
        interactive = spec.get("interactive")
        cluster = spec.get("cluster") or {}
        server = cluster.get("server", "") if isinstance(cluster, dict) else ""
    except (ValueError, AttributeError, RecursionError):
        raise BadRequest("KUBERNETES_EXEC_INFO is not valid JSON; is the shim run by kubectl?") from None
    if api_version not in SUPPORTED_API_VERSIONS:
        raise BadRequest(
            f"kubectl asked for {api_version}; set the kubeconfig's exec apiVersion to {API_V1}"
        )
    return ExecInfo(
        api_version=api_version,
        interactive=interactive if isinstance(interactive, bool) else None,
        cluster_server=server if isinstance(server, str) else "",
    )


def rfc3339(epoch: float) -> str:
    """UTC, whole seconds, as client-go parses expirationTimestamp."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))


def exec_credential(api_version: str, token: str, expiration: float) -> bytes:
    """The ExecCredential JSON kubectl reads from the plugin's stdout (compact, no trailing newline)."""
    doc = {
        "kind": "ExecCredential",
        "apiVersion": api_version,
        "spec": {},
        "status": {"token": token, "expirationTimestamp": rfc3339(expiration)},
    }
    return json.dumps(doc, separators=(",", ":")).encode()
