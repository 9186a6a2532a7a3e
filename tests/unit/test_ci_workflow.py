"""The shipped CI workflow is valid against GitHub's schema and runs what scripts/test runs."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


def _jobs() -> dict[str, dict[str, object]]:
    return dict(YAML(typ="safe").load(WORKFLOW.read_text())["jobs"])


@pytest.mark.skipif(importlib.util.find_spec("check_jsonschema") is None, reason="check-jsonschema (test extra)")
def test_the_workflow_validates_against_githubs_schema() -> None:
    out = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                          str(WORKFLOW)], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_linux_runs_scripts_test_and_the_others_its_pytest_command() -> None:
    jobs = _jobs()
    linux = [step.get("run", "") for step in jobs["linux"]["steps"]]  # type: ignore[attr-defined]
    assert any(run.startswith("scripts/test tests/unit tests/integration") for run in linux)
    desktop = jobs["desktop"]
    oses = {entry["os"].split("-")[0] for entry in desktop["strategy"]["matrix"]["include"]}  # type: ignore[index]
    assert oses == {"macos", "windows"}
    runs = " ".join(step.get("run", "") for step in desktop["steps"])  # type: ignore[attr-defined]
    # scripts/test ends with `.venv/bin/python -m pytest "$@"`: the same command, with the tiers as arguments
    assert 'exec .venv/bin/python -m pytest "$@"' in (ROOT / "scripts" / "test").read_text()
    assert '"$PY" -m pytest tests/unit tests/integration' in runs
    assert "security create-keychain" in runs and "security unlock-keychain" in runs and "list-keychains" in runs
