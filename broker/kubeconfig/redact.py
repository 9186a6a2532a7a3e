"""Secrets taken out of kubeconfig text before it is shown (``convert-kubeconfig --dry-run``).

A dry-run diff goes to a terminal, a CI log or a ticket, so every value that authenticates is replaced
by ``<redacted>`` wherever YAML can put it:

* get-token arguments naming a secret: ``--client-secret=VALUE``, ``--client-secret VALUE`` in one
  string, the list form (``- --client-secret`` with the value as the next item) and flow lists
  (``[--client-secret, VALUE]``); likewise ``--password``, ``--client-certificate-password`` and the
  ``--oidc-`` spellings;
* ``exec.env`` entries whose name ends in SECRET, PASSWORD, TOKEN or KEY (block or flow form, ``name``
  before or after ``value``);
* fields that hold credentials: ``client-key-data``, ``token``, ``password``, cached ``access-token``,
  ``refresh-token`` and ``id-token`` of legacy auth-providers, ``client-secret``.

It reads a diff line by line, each side (old, new) in order, because a list-form value or an env
``value:`` is only a secret by what stands on the neighbouring line. Control characters are stripped
too: a hostile kubeconfig must not drive the terminal that shows its diff.
"""

from __future__ import annotations

import re

from shim.text import printable

MASK = "<redacted>"
_FLAG = r"--(?:oidc-)?(?:client-secret|password|client-certificate-password)"
# --flag=VALUE or --flag VALUE inside one scalar.
_INLINE_FLAG = re.compile(rf"({_FLAG}(?:=|\s+))(?!<redacted>)([^\s,\]\"']+)")
# [--flag, VALUE] / ["--flag", "VALUE"] in a flow list.
_FLOW_FLAG = re.compile(rf"({_FLAG}[\"']?\s*,\s*[\"']?)([^\s,\]\"']+)")
# A list item that is the flag alone: its value is the next item.
_LONE_FLAG = re.compile(rf"^\s*-\s+[\"']?{_FLAG}[\"']?\s*(?:#.*)?$")
_LIST_ITEM = re.compile(r"^(\s*-\s+[\"']?)([^\"'#\s][^\"'#]*?)([\"']?\s*(?:#.*)?)$")
_SECRET_NAME = r"[A-Za-z0-9_]*(?:SECRET|PASSWORD|TOKEN|KEY)"  # noqa: S105  # a pattern of names, not a secret
_ENV_NAME = re.compile(rf"^\s*(?:-\s+)?name:\s*[\"']?{_SECRET_NAME}[\"']?\s*$", re.IGNORECASE)
_ENV_VALUE = re.compile(r"^(\s*(?:-\s+)?value:\s*)(\S.*)$")
_FLOW_ENV = re.compile(
    rf"(name:\s*[\"']?{_SECRET_NAME}[\"']?\s*,\s*value:\s*)([^,}}]+)|(value:\s*)([^,}}]+)(,\s*name:\s*[\"']?{_SECRET_NAME}\b)",
    re.IGNORECASE,
)
_SECRET_FIELD = re.compile(
    r"^(\s*(?:-\s+)?(?:client-key-data|token|password|access-token|refresh-token|id-token|client-secret"
    r"|secret|apiserver-secret)\s*:\s*)(\S.*)$",
    re.IGNORECASE,
)


def redact_line(line: str) -> str:
    """One line with every secret that the line alone shows replaced."""
    line = _SECRET_FIELD.sub(rf"\1{MASK}", line)
    line = _INLINE_FLAG.sub(rf"\1{MASK}", line)
    line = _FLOW_FLAG.sub(rf"\1{MASK}", line)
    return _FLOW_ENV.sub(_flow_env, line)


def _flow_env(match: re.Match[str]) -> str:
    if match.group(1) is not None:
        return f"{match.group(1)}{MASK}"
    return f"{match.group(3)}{MASK}{match.group(5)}"


def redact_diff(lines: list[str]) -> list[str]:
    """Unified-diff lines (without newlines) with every secret replaced, then made printable."""
    out = [redact_line(line) if line[:1] in " -+" and not line.startswith(("---", "+++")) else line
           for line in lines]
    for side in ("-", "+"):
        # The lines this side of the diff consists of: context lines belong to both sides.
        indices = [i for i, line in enumerate(lines) if line[:1] in (" ", side) and not line.startswith(side * 3)]
        for before, after in zip(indices, indices[1:], strict=False):
            if any(line.startswith("@@") for line in lines[before + 1 : after]):
                continue  # a hunk boundary: the lines are not neighbours in the file
            first, second = lines[before][1:], lines[after][1:]
            if _LONE_FLAG.match(first):
                out[after] = out[after][:1] + _LIST_ITEM.sub(rf"\1{MASK}\3", second)
            if _ENV_NAME.match(first):
                out[after] = out[after][:1] + _ENV_VALUE.sub(rf"\1{MASK}", redact_line(second))
            if _ENV_NAME.match(second) and _ENV_VALUE.match(first):
                out[before] = out[before][:1] + _ENV_VALUE.sub(rf"\1{MASK}", redact_line(first))
    return [printable(line) for line in out]
