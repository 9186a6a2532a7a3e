"""End-to-end tests use the rig: the real kubectl, the real Secret Service, the test authority.

The session ends with a leak check: no token any test authority issued may appear in any file the
tests left (logs, state, kubeconfigs, the private HOME with its keyring) or in any captured output.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import rig as rig_module
from tests.support.rig_fixtures import AUTHORITIES, ca, rig  # noqa: F401
from tests.support.session import IsolatedSession


def _files(root: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            yield path


@pytest.fixture(scope="session", autouse=True)
def no_token_leaks(desktop_session: IsolatedSession, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield
    secrets = {s for authority in AUTHORITIES for s in authority.issued_secrets()}
    needles = {s.encode() for s in secrets} | {s.rsplit(".", 1)[-1].encode() for s in secrets if s.count(".") == 2}
    if not needles:
        return  # this run issued no token (a subset of the suite): nothing could have leaked
    leaks: list[str] = []
    roots = [tmp_path_factory.getbasetemp(), desktop_session.root]
    scanned = 0
    for root in roots:
        for path in _files(root):
            try:
                data = path.read_bytes()
            except OSError:
                continue
            scanned += 1
            if any(n in data for n in needles):
                leaks.append(str(path))
    for i, transcript in enumerate(rig_module.TRANSCRIPTS):
        if any(n in transcript for n in needles):
            leaks.append(f"captured output #{i}")
    assert scanned > 0
    assert not leaks, f"token material found in: {leaks[:10]}"
