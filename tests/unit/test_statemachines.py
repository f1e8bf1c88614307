"""Every state machine passes statelint, every placeholder is substituted by the template, and every
Task retries Lambda's transient errors and catches the rest (house style)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from opsflow_local.template import Template

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = sorted((ROOT / "statemachines").glob("*.asl.json"))


def statelint() -> str:
    found = shutil.which("statelint") or str(Path(sys.executable).parent / "statelint")
    return found


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda p: p.name)
def test_statelint_passes(path: Path) -> None:
    result = subprocess.run([statelint(), str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_statelint_catches_a_dangling_next(tmp_path: Path) -> None:
    broken = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}}
    path = tmp_path / "broken.asl.json"
    path.write_text(json.dumps(broken))
    assert subprocess.run([statelint(), str(path)], capture_output=True, check=False).returncode != 0


def test_every_placeholder_has_a_substitution() -> None:
    template = Template.load(ROOT / "template.yaml", "us-east-1")
    for resource in template.resources("AWS::Serverless::StateMachine").values():
        properties = resource["Properties"]
        text = (ROOT / properties["DefinitionUri"]).read_text()
        placeholders = set(re.findall(r"\$\{(\w+)\}", text))
        assert placeholders == set(properties.get("DefinitionSubstitutions", {})), properties["DefinitionUri"]


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda p: p.name)
def test_every_task_retries_and_catches(path: Path) -> None:
    states = json.loads(path.read_text())["States"]
    for name, state in states.items():
        if state["Type"] != "Task":
            continue
        retried = {error for retry in state.get("Retry", []) for error in retry["ErrorEquals"]}
        assert "Lambda.ServiceException" in retried, name
        assert any("States.ALL" in c["ErrorEquals"] for c in state.get("Catch", [])), name
