"""Kubeconfig files as kubectl finds them, loaded and written back without losing comments or order.

kubectl reads ``--kubeconfig``, else every file ``KUBECONFIG`` lists (merged, the first file defining a
name wins), else ``~/.kube/config``. These helpers follow the same rules so conversion and the
management commands see what kubectl sees.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.util import load_yaml_guess_indent

BACKUP_SUFFIX = ".kubetray-backup"


class KubeconfigError(Exception):
    """A kubeconfig that cannot be read or written; the message says which file and what to do."""


@dataclass
class KubeconfigFile:
    """One file: its path, its text as read, and the round-trip document."""

    path: str
    text: str
    doc: Any
    indent: tuple[int, int] = (2, 0)  # (sequence indent, sequence dash offset) as the file has it
    missing: bool = False

    def entries(self, section: str) -> Iterator[tuple[str, Any]]:
        """``(name, body)`` of each entry of ``users``, ``contexts`` or ``clusters``."""
        items = self.doc.get(section) if isinstance(self.doc, dict) else None
        for item in items or ():
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                yield item["name"], item.get(section[:-1])

    def dump(self) -> str:
        """The document as text, in the file's own indentation."""
        out = io.StringIO()
        _yaml(self.indent).dump(self.doc, out)
        return out.getvalue()


def _yaml(indent: tuple[int, int] = (2, 0)) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold long args or base64 CA data
    sequence, offset = indent
    yaml.indent(mapping=2, sequence=max(sequence, offset + 2), offset=offset)
    # kubectl writes `env: null`; ruamel would write `env:` and turn an untouched line into a change.
    yaml.representer.add_representer(type(None), _null)
    return yaml


def _null(representer: Any, _value: None) -> Any:
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


def kubeconfig_paths(explicit: str | None = None) -> list[str]:
    """The files kubectl would read, in precedence order."""
    if explicit:
        return [os.path.expanduser(explicit)]
    listed = os.environ.get("KUBECONFIG", "")
    paths = [os.path.expanduser(p) for p in listed.split(os.pathsep) if p]
    if paths:
        return list(dict.fromkeys(paths))
    return [os.path.join(os.path.expanduser("~"), ".kube", "config")]


def load(path: str) -> KubeconfigFile:
    """Read one kubeconfig; a missing file is an empty one (as kubectl treats KUBECONFIG entries)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return KubeconfigFile(path, "", None, missing=True)
    except OSError as exc:
        raise KubeconfigError(f"cannot read {path}: {exc.strerror}") from None
    if not text.strip():
        return KubeconfigFile(path, text, None)
    try:
        _doc, sequence, offset = load_yaml_guess_indent(text)
        indent = (sequence or 2, offset or 0)
        doc = _yaml(indent).load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise KubeconfigError(
            f"{path} is not valid YAML{where}; fix it or pass another file with --kubeconfig"
        ) from None
    if doc is not None and not isinstance(doc, dict):
        raise KubeconfigError(f"{path} is not a kubeconfig (its top level is not a mapping)")
    return KubeconfigFile(path, text, doc, indent)


def load_all(explicit: str | None = None) -> list[KubeconfigFile]:
    return [load(p) for p in kubeconfig_paths(explicit)]


def write_atomically(path: str, text: str, mode: int | None = None) -> str:
    """Replace ``path`` with ``text`` in one rename; returns the file actually written.

    A symlinked kubeconfig stays a symlink: its target is rewritten (dotfile managers link
    ~/.kube/config into a repository). The file keeps its mode (``mode`` overrides; a new file gets
    0600, since kubeconfigs hold secrets). The text goes to a temporary file that is 0600 from its
    creation, in the same directory (so the rename is atomic), then takes the final mode, is flushed to
    disk and renamed over the target, so nobody can read it on the way and a crash leaves old or new.
    """
    target = os.path.realpath(path)
    try:
        keep = os.stat(target).st_mode & 0o777 if mode is None else mode
    except FileNotFoundError:
        keep = 0o600 if mode is None else mode
    directory = os.path.dirname(target)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".kubetray-")  # O_EXCL, mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            if sys.platform == "win32":
                os.chmod(tmp, keep)  # only the read-only bit means anything there
            else:
                os.fchmod(f.fileno(), keep)
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)
    return target


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (where the platform lets a directory be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a directory; the rename has still happened
    finally:
        os.close(fd)


def backup_path(path: str) -> str:
    return path + BACKUP_SUFFIX


@dataclass
class Merged:
    """kubectl's merged view: for each name, the entry from the first file that defines it."""

    files: list[KubeconfigFile]
    current_context: str = ""
    contexts: dict[str, Any] = field(default_factory=dict)
    users: dict[str, tuple[KubeconfigFile, Any]] = field(default_factory=dict)
    clusters: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, files: list[KubeconfigFile]) -> Merged:
        merged = cls(files)
        for f in files:
            if not isinstance(f.doc, dict):
                continue
            if not merged.current_context and isinstance(f.doc.get("current-context"), str):
                merged.current_context = f.doc["current-context"]
            for name, body in f.entries("contexts"):
                merged.contexts.setdefault(name, body)
            for name, body in f.entries("users"):
                merged.users.setdefault(name, (f, body))
            for name, body in f.entries("clusters"):
                merged.clusters.setdefault(name, body)
        return merged

    def user_of(self, context: str | None) -> tuple[str, str, Any]:
        """``(context name, user name, user body)`` for ``context`` (default: the current one)."""
        name = context or self.current_context
        if not name:
            raise KubeconfigError("no current context is set; pass --context NAME (see `kubectl config get-contexts`)")
        body = self.contexts.get(name)
        if not isinstance(body, dict):
            raise KubeconfigError(f"no context named {name!r} in {', '.join(f.path for f in self.files)}")
        user = body.get("user")
        if not isinstance(user, str) or user not in self.users:
            raise KubeconfigError(f"context {name!r} names user {user!r}, which no kubeconfig file defines")
        return name, user, self.users[user][1]
