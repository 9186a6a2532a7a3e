"""kubectl's kuberc (``KUBERC``, else ``~/.kube/kuberc``) and its credential-plugin allowlist (KEP-3104).

Since kubectl 1.35 a kuberc can refuse exec credential plugins: ``credentialPluginPolicy`` is
``AllowAll`` (also what an absent policy or an absent file means), ``DenyAll``, or ``Allowlist``,
which runs only the plugins named in ``credentialPluginAllowlist`` (``- name: /absolute/path``). kubectl
then fails with ``plugin path "…" is not permitted by the credential plugin allowlist``, which reads as
if kubetray were broken. Here: what the policy says about the shim, and the one entry that lets it in.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from broker.kubeconfig.files import KubeconfigFile, load

ALLOW_ALL, DENY_ALL, ALLOWLIST = "AllowAll", "DenyAll", "Allowlist"
API_VERSION = "kubectl.config.k8s.io/v1beta1"


def kuberc_path(environ: Mapping[str, str] | None = None) -> str | None:
    """The kuberc kubectl reads, or None when ``KUBERC=off`` turns it off."""
    env = os.environ if environ is None else environ
    chosen = env.get("KUBERC", "")
    if chosen == "off":
        return None
    return os.path.expanduser(chosen) if chosen else os.path.join(os.path.expanduser("~"), ".kube", "kuberc")


def allowlist_entry(shim: str) -> str:
    """The YAML a person adds under ``credentialPluginAllowlist:`` for ``shim``."""
    return f"- name: {shim}"


@dataclass(frozen=True)
class Verdict:
    """What the kuberc at ``path`` does to ``shim``: ``refusal`` is "" when kubectl would run it."""

    path: str
    policy: str
    refusal: str = ""
    exists: bool = True


def _policy(doc: Any) -> tuple[str, list[str]]:
    if not isinstance(doc, dict):
        return ALLOW_ALL, []
    policy = str(doc.get("credentialPluginPolicy") or ALLOW_ALL)
    names = [str(item.get("name")) for item in doc.get("credentialPluginAllowlist") or ()
             if isinstance(item, dict) and item.get("name")]
    return policy, names


def judge(f: KubeconfigFile, shim: str) -> Verdict:
    """Whether kubectl, reading ``f``, would run the exec plugin at the absolute path ``shim``."""
    if f.missing:
        return Verdict(f.path, ALLOW_ALL, exists=False)
    policy, names = _policy(f.doc)
    if policy == ALLOW_ALL:
        return Verdict(f.path, policy)
    if policy == DENY_ALL:
        return Verdict(f.path, policy, "its credentialPluginPolicy is DenyAll, so kubectl runs no credential plugin")
    if policy != ALLOWLIST:
        return Verdict(f.path, policy, f"its credentialPluginPolicy {policy!r} is not one kubectl knows")
    if shim in names:
        return Verdict(f.path, policy)
    return Verdict(f.path, policy, f"its credentialPluginAllowlist does not name {shim}")


def add_to_allowlist(f: KubeconfigFile, shim: str) -> bool:
    """Add ``- name: shim`` to an Allowlist policy's list, keeping comments; False when nothing changed.

    Only an Allowlist is edited: AllowAll (or no kuberc) already runs the shim, and DenyAll is a choice
    someone made on purpose, which a conversion must not overturn (:func:`judge` says what to do).
    """
    if f.missing or not isinstance(f.doc, CommentedMap):
        return False
    policy, names = _policy(f.doc)
    if policy != ALLOWLIST or shim in names:
        return False
    entries = f.doc.get("credentialPluginAllowlist")
    if not isinstance(entries, list):
        entries = CommentedSeq()
        f.doc["credentialPluginAllowlist"] = entries
    entry = CommentedMap()
    entry["name"] = shim
    entries.append(entry)
    return True


def read(environ: Mapping[str, str] | None = None) -> KubeconfigFile | None:
    """The kuberc kubectl would read (a missing one reads as empty), or None when turned off."""
    path = kuberc_path(environ)
    return None if path is None else load(path)
