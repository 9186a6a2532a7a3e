"""The layering contracts in pyproject.toml can fail: each planted import breaks the contract it should.

scripts/test runs ``lint-imports`` on the real tree; here a copy of the tree gets one forbidden import
at a time, and the same contracts must report it (a contract that passes everything would be a defect).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed (scripts/test)")


def _lint(tree: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(tree)  # before site-packages: the copy, not the editable install, is analysed
    only = [arg for contract in contracts for arg in ("--contract", contract)]
    return subprocess.run([str(LINT_IMPORTS), str(ROOT / "pyproject.toml"), "--no-cache", "--no-logo", *only],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("layering")
    for package in ("broker", "shim"):
        shutil.copytree(ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_the_real_tree_keeps_every_contract(tree: Path) -> None:
    proc = _lint(tree)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "0 broken" in proc.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("broker/core/_planted.py", "import broker.sources.router\n", "core"),
        ("broker/core/_planted.py", "import requests\n", "core"),
        ("shim/_planted.py", "import broker.core.model\n", "shim"),
        ("broker/execplugin/_planted.py", "import broker.ipc.framing\n", "execplugin"),
        ("broker/store/_planted.py", "import broker.tray.presenter\n", "adapters-independent"),
        ("broker/tray/_planted.py", "import broker.app\n", "adapters-inward"),
        ("broker/store/_planted.py", "import msal\n", "one-library-each"),
        ("broker/tray/_planted.py", "import keyring\n", "tray-library"),
        ("broker/ipc/_planted.py", "import requests\n", "stdlib-adapters"),
        ("broker/sources/_planted.py", "import keyring\n", "sources-library"),
        ("broker/cli/_planted.py", "from broker.store import keyring_store\n", "front-ends"),
        ("broker/process/paths.py", "import broker.ipc.unix\n", "process"),
    ],
)
def test_a_planted_import_breaks_its_contract(tree: Path, module: str, line: str, contract: str) -> None:
    planted = tree / module
    original = planted.read_text() if planted.exists() else None
    planted.write_text((original or "") + line)
    try:
        proc = _lint(tree, contract)
    finally:
        if original is None:
            planted.unlink()
        else:
            planted.write_text(original)
    assert proc.returncode != 0, proc.stdout[-2000:]  # broken by the one planted line (the whole tree keeps it: above)
    assert "1 broken" in proc.stdout and planted.stem in proc.stdout, proc.stdout[-2000:]
