"""Recognise kubeconfig users that sign in through kubelogin or a legacy auth-provider, and point them at
the kubetray shim, keeping their arguments and environment.

Recognised (everything else is left untouched and reported):

* Azure kubelogin: ``command: kubelogin``, ``args: [get-token, …]`` (from ``az aks get-credentials`` and
  ``kubelogin convert-kubeconfig``, any ``--login`` mode): the arguments are kept verbatim.
* int128/kubelogin: ``kubectl oidc-login get-token …``, ``kubectl-oidc_login get-token …`` or
  ``kubelogin get-token --oidc-…``: the arguments after ``get-token`` are kept verbatim.
* ``auth-provider: azure`` and ``auth-provider: oidc`` (removed from kubectl in 1.26): the provider's
  config becomes the equivalent get-token flags; its cached tokens are dropped with it.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from broker.kubeconfig.files import KubeconfigFile
from broker.kubeconfig.redact import redact_diff, redact_line

API_V1 = "client.authentication.k8s.io/v1"
INSTALL_HINT = (
    "kubetray-shim comes with kubetray, the credential broker for kubectl. Install kubetray and run "
    "`kubetray convert-kubeconfig` again, or restore the previous entry with `kubetray convert-kubeconfig --revert`."
)

AZURE = "Azure kubelogin"
INT128 = "int128 kubelogin (oidc-login)"
LEGACY_AZURE = "auth-provider azure"
LEGACY_OIDC = "auth-provider oidc"
SHIM = "kubetray"

CONVERTED, ALREADY, UNRECOGNISED = "converted", "already uses kubetray", "left alone"



@dataclass(frozen=True)
class Finding:
    """What conversion did (or would do) with one user entry."""

    path: str
    user: str
    kind: str
    action: str
    detail: str = ""

    def line(self) -> str:
        extra = f": {self.detail}" if self.detail else ""
        return f"{self.action}: user {self.user!r} ({self.kind}) in {self.path}{extra}"


def _base(command: str) -> str:
    name = os.path.basename(command.replace("\\", "/"))
    return name[:-4] if name.lower().endswith(".exe") else name


def classify(user: Any) -> tuple[str, str] | None:
    """``(kind, detail)`` of a user body's sign-in plugin, or None when it has none (token, certificate)."""
    if not isinstance(user, dict):
        return None
    exec_ = user.get("exec")
    if isinstance(exec_, dict):
        command = str(exec_.get("command") or "")
        args = [str(a) for a in exec_.get("args") or []]
        base = _base(command)
        if base == "kubetray-shim":
            return SHIM, ""
        if base == "kubectl" and args[:2] == ["oidc-login", "get-token"]:
            return INT128, ""
        if base in ("kubectl-oidc_login", "kubectl-oidc-login") and args[:1] == ["get-token"]:
            return INT128, ""
        if base == "kubelogin" and args[:1] == ["get-token"]:
            return (INT128, "") if any(a.startswith("--oidc-") for a in args) else (AZURE, "")
        return f"exec {base or '(no command)'}", "not a kubelogin command"
    provider = user.get("auth-provider")
    if isinstance(provider, dict):
        name = str(provider.get("name") or "")
        if name == "azure":
            return LEGACY_AZURE, ""
        if name == "oidc":
            return LEGACY_OIDC, ""
        return f"auth-provider {name or '(unnamed)'}", "not an Entra ID or OIDC provider"
    return None


def _legacy_azure_args(config: dict[str, Any]) -> list[str]:
    missing = [k for k in ("apiserver-id", "client-id", "tenant-id") if not config.get(k)]
    if missing:
        raise ValueError(f"its config has no {', '.join(missing)}")
    args = ["get-token", "--login", "devicecode", "--server-id", str(config["apiserver-id"]),
            "--client-id", str(config["client-id"]), "--tenant-id", str(config["tenant-id"])]
    if config.get("environment"):
        args += ["--environment", str(config["environment"])]
    if str(config.get("config-mode") or "0") != "1":
        args.append("--legacy")  # config-mode 0 (the default) asked for the spn: audience
    return args


def _legacy_oidc_args(config: dict[str, Any]) -> list[str]:
    missing = [k for k in ("idp-issuer-url", "client-id") if not config.get(k)]
    if missing:
        raise ValueError(f"its config has no {', '.join(missing)}")
    args = ["get-token", f"--oidc-issuer-url={config['idp-issuer-url']}", f"--oidc-client-id={config['client-id']}"]
    if config.get("client-secret"):
        args.append(f"--oidc-client-secret={config['client-secret']}")
    for scope in str(config.get("extra-scopes") or "").split(","):
        if scope.strip():
            args.append(f"--oidc-extra-scope={scope.strip()}")
    if config.get("idp-certificate-authority"):
        args.append(f"--certificate-authority={config['idp-certificate-authority']}")
    if config.get("idp-certificate-authority-data"):
        args.append(f"--certificate-authority-data={config['idp-certificate-authority-data']}")
    return args


def _point_at_shim(exec_: CommentedMap, command: str) -> None:
    exec_["apiVersion"] = API_V1
    exec_["command"] = command
    exec_["interactiveMode"] = "IfAvailable"
    exec_["installHint"] = INSTALL_HINT


def convert_user(user: CommentedMap, kind: str, command: str) -> None:
    """Rewrite one user body in place (``kind`` from :func:`classify`); ValueError if it cannot be."""
    if kind in (AZURE, INT128):
        exec_ = user["exec"]
        args = exec_.get("args")
        if kind == INT128 and isinstance(args, list) and args[:1] == ["oidc-login"]:
            del args[0]  # `kubectl oidc-login get-token …` → `get-token …`
        _point_at_shim(exec_, command)
        return
    config = user["auth-provider"].get("config") or {}
    args = _legacy_azure_args(config) if kind == LEGACY_AZURE else _legacy_oidc_args(config)
    new = CommentedMap()
    new["apiVersion"] = API_V1
    new["command"] = command
    new["args"] = CommentedSeq(args)
    new["provideClusterInfo"] = False
    new["interactiveMode"] = "IfAvailable"
    new["installHint"] = INSTALL_HINT
    position = list(user.keys()).index("auth-provider")
    del user["auth-provider"]
    user.insert(position, "exec", new)


def convert_file(f: KubeconfigFile, command: str, only_users: set[str] | None = None) -> list[Finding]:
    """Convert every recognised user of ``f`` (or only ``only_users``); the document changes in place."""
    findings: list[Finding] = []
    for name, user in f.entries("users"):
        if only_users is not None and name not in only_users:
            continue
        found = classify(user)
        if found is None:
            continue
        kind, detail = found
        if kind == SHIM:
            findings.append(Finding(f.path, name, kind, ALREADY))
        elif kind in (AZURE, INT128, LEGACY_AZURE, LEGACY_OIDC):
            try:
                convert_user(user, kind, command)
            except ValueError as exc:
                findings.append(Finding(f.path, name, kind, UNRECOGNISED, str(exc)))
            else:
                findings.append(Finding(f.path, name, kind, CONVERTED))
        else:
            findings.append(Finding(f.path, name, kind, UNRECOGNISED, detail))
    return findings


def redact(line: str) -> str:
    """A diff line with any secret value it shows on its own replaced (see broker.kubeconfig.redact)."""
    return redact_line(line)


def unified_diff(old: str, new: str, label: str) -> str:
    """The change as a unified diff, secrets redacted and control characters stripped."""
    lines = difflib.unified_diff(
        old.splitlines(), new.splitlines(), fromfile=label, tofile=f"{label} (converted)", lineterm=""
    )
    return "".join(line + "\n" for line in redact_diff(list(lines)))
