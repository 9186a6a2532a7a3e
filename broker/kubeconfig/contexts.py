"""From kubeconfig contexts to what the daemon knows: exec arguments and profile keys."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from broker.core.errors import KubetrayError
from broker.execplugin.kubelogin_args import parse_exec
from broker.kubeconfig.files import KubeconfigError, Merged, load_all


@dataclass(frozen=True)
class ExecEntry:
    """A context's exec plugin: command, arguments and the variables it sets."""

    context: str
    user: str
    command: str
    args: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def uses_shim(self) -> bool:
        return os.path.basename(self.command) == "kubetray-shim"


def _entry(context: str, user: str, body: Any) -> ExecEntry | None:
    exec_ = body.get("exec") if isinstance(body, dict) else None
    if not isinstance(exec_, dict):
        return None
    env = {str(e.get("name")): str(e.get("value", "")) for e in exec_.get("env") or [] if isinstance(e, dict)}
    return ExecEntry(context, user, str(exec_.get("command") or ""), tuple(str(a) for a in exec_.get("args") or ()),
                     env)


def exec_entry(kubeconfig: str | None, context: str | None) -> ExecEntry:
    """The exec entry of ``context`` (default: current); KubeconfigError says what is missing."""
    merged = Merged.of(load_all(kubeconfig))
    name, user, body = merged.user_of(context)
    entry = _entry(name, user, body)
    if entry is None:
        raise KubeconfigError(
            f"context {name!r} (user {user!r}) has no exec plugin; convert it with "
            f"`kubetray convert-kubeconfig --context {name}`"
        )
    return entry


def contexts_by_profile(kubeconfig: str | None = None) -> dict[str, list[str]]:
    """Profile key → names of the contexts whose shim arguments map to it (unreadable files are skipped)."""
    try:
        merged = Merged.of(load_all(kubeconfig))
    except KubeconfigError:
        return {}
    found: dict[str, list[str]] = {}
    for name, body in merged.contexts.items():
        user = body.get("user") if isinstance(body, dict) else None
        if not isinstance(user, str) or user not in merged.users:
            continue
        entry = _entry(name, user, merged.users[user][1])
        if entry is None or not entry.uses_shim:
            continue
        try:
            # As kubectl would run it: the entry's exec.env over the environment (it can pick the
            # mode, the client id, the az login, and so the profile).
            key = parse_exec(list(entry.args), {**os.environ, **entry.env}).profile.key
        except KubetrayError:
            continue
        found.setdefault(key, []).append(name)
    return found
