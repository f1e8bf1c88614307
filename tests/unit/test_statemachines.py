"""Every state machine passes statelint, every placeholder is substituted by the template, every Task
retries Lambda's transient errors alike and catches the rest (house style), and every step a state machine
invokes is one its workflow's step table knows."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsflow.runs import registry
from opsflow.runs.config import OptIn, StepsConfig
from opsflow.runs.steps import AFTER_FAILURE, AFTER_FAILURE_RETRY_FACTOR
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


def all_states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state, with those inside Parallel branches and Map processors."""
    for name, state in states.items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from all_states(branch["States"])
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                yield from all_states(state[key]["States"])


LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
LAMBDA_WAIT = "arn:aws:states:::lambda:invoke.waitForTaskToken"


def steps_invoked(definition: dict[str, Any]) -> dict[str, str]:
    """Each Lambda Task's `step`, by state name (waits on a task token included)."""
    return {
        name: state["Parameters"]["Payload"]["step"]
        for name, state in all_states(definition["States"])
        if state["Type"] == "Task" and state.get("Resource") in (LAMBDA_INVOKE, LAMBDA_WAIT)
    }


def wired_workflows() -> dict[str, tuple[str, str]]:
    """For each state machine in the template: the workflow its steps function serves (its WORKFLOW) and
    its definition file."""
    template = Template.load(ROOT / "template.yaml", "us-east-1")
    wired = {}
    for name, resource in template.resources("AWS::Serverless::StateMachine").items():
        properties = resource["Properties"]
        steps_function = properties["DefinitionSubstitutions"]["StepsFunctionArn"]["Fn::GetAtt"][0]
        workflow = template.function_properties(steps_function)["Environment"]["Variables"]["WORKFLOW"]
        wired[name] = (workflow, properties["DefinitionUri"])
    return wired


def step_table(workflow: str) -> set[str]:
    config = StepsConfig(
        runs_table="runs",
        locks_table="locks",
        event_bus="default",
        lock_ttl_seconds=60,
        opt_in=OptIn(),
        environment_tag_key="opsflow:environment",
        capacity_table="capacity",
    )
    return set(registry.get(workflow).steps(config).table({"run_id": "r", "target": "asg:web"}))


def test_every_registered_workflow_has_one_state_machine_of_its_name() -> None:
    wired = wired_workflows()
    assert sorted(workflow for workflow, _ in wired.values()) == sorted(registry.names())
    for workflow, definition in wired.values():
        assert definition == f"statemachines/{workflow}.asl.json"


@pytest.mark.parametrize("workflow", registry.names())
def test_every_step_a_state_machine_invokes_is_in_its_workflows_step_table(workflow: str) -> None:
    definition = json.loads((ROOT / "statemachines" / f"{workflow}.asl.json").read_text())
    table = step_table(workflow)
    invoked = steps_invoked(definition)
    unknown = {state: step for state, step in invoked.items() if step not in table}
    assert not unknown, f"{workflow}: states invoke steps its step table lacks: {unknown}"
    unused = table - set(invoked.values())
    assert not unused, f"{workflow}: steps no state invokes: {sorted(unused)}"


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda p: p.name)
def test_every_task_at_any_depth_retries_lambda_errors_alike_and_catches(path: Path) -> None:
    definition = json.loads(path.read_text())
    policies = set()
    for name, state in all_states(definition["States"]):
        if state["Type"] != "Task":
            continue
        assert state.get("Retry"), f"{name} has no Retry"
        assert any("States.ALL" in c["ErrorEquals"] for c in state.get("Catch", [])), (
            f"{name} catches nothing"
        )
        lambda_retries = [r for r in state["Retry"] if "Lambda.ServiceException" in r["ErrorEquals"]]
        assert len(lambda_retries) == 1, f"{name} retries Lambda's errors {len(lambda_retries)} times"
        policies.add(json.dumps(lambda_retries[0], sort_keys=True))
    assert len(policies) == 1, f"{path.name} retries Lambda's errors in {len(policies)} different ways"


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda p: p.name)
def test_every_task_rides_out_throttling_and_steps_that_put_things_back_longest(path: Path) -> None:
    """AwsTransient (throttling, AWS's own failures) is retried with capped, jittered backoff; the steps
    runner decides when the budget is spent. Refusals match no retrier but the one for everything, which
    only the finish steps and rollback have."""
    forward, after_failure = set(), set()
    for name, state in all_states(json.loads(path.read_text())["States"]):
        if state["Type"] != "Task":
            continue
        retriers = [r for r in state["Retry"] if r["ErrorEquals"] == ["AwsTransient"]]
        assert len(retriers) == 1, f"{name} does not retry AwsTransient once"
        (retrier,) = retriers
        # The first retrier that matches is the one used: a catch-all before it would take its place.
        catch_alls = [i for i, r in enumerate(state["Retry"]) if "States.ALL" in r["ErrorEquals"]]
        assert all(state["Retry"].index(retrier) < i for i in catch_alls), name
        longest = sum(
            min(retrier["IntervalSeconds"] * retrier["BackoffRate"] ** n, retrier["MaxDelaySeconds"])
            for n in range(retrier["MaxAttempts"])
        )
        step = state["Parameters"]["Payload"]["step"]
        (after_failure if step in AFTER_FAILURE else forward).add(json.dumps(retrier, sort_keys=True))
        budget = 300 * (AFTER_FAILURE_RETRY_FACTOR if step in AFTER_FAILURE else 1)
        # Even with full jitter (half the delays on average), the retrier outlasts the runner's default budget.
        assert longest / 2 > budget, f"{name}: {longest} s of retries for a {budget} s budget"
    assert len(forward) == 1, f"{path.name} retries AwsTransient in {len(forward)} ways going forward"
    assert len(after_failure) <= 1


# Route 53 sends no event when a change is INSYNC, nor Systems Manager when an instance registers: the DNS
# cutover reads GetChange, and a builder bake DescribeInstanceInformation, every few seconds.
NO_EVENT_WAITS = {"dns_shift.asl.json": ["WaitForSync"], "ami_bake.asl.json": ["WaitForBuilder"]}


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda p: p.name)
def test_no_state_machine_polls_every_wait_is_on_an_event_bounded_by_the_reconcile_interval(
    path: Path,
) -> None:
    """No Wait state is left but for what AWS sends no event about: waiting is a `.waitForTaskToken` Task
    whose timeout is the reconcile interval (or a traffic hold's own time), caught by the step that looks
    for itself."""
    states = dict(all_states(json.loads(path.read_text())["States"]))
    waits = [name for name, state in states.items() if state["Type"] == "Wait"]
    assert waits == NO_EVENT_WAITS.get(path.name, [])
    for name in waits:
        # A short fixed poll that leads straight back to the step that reads the status.
        assert states[name]["Seconds"] <= 30, name
        assert states[states[name]["Next"]]["Type"] == "Task", name
    for name, state in states.items():
        if state.get("Resource") != LAMBDA_WAIT:
            continue
        assert state["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token", name
        # A traffic hold's wait is its own time; a remediation's, the action's time left if that is shorter.
        bounds = ("$.settings.reconcile_seconds", "$.traffic.wait_seconds", "$.watch.wait_seconds")
        assert state["TimeoutSecondsPath"] in bounds, name
        assert "OutputPath" not in state, name
        assert state["ResultPath"] == "$.wake", name
        timeout = next((c for c in state["Catch"] if c["ErrorEquals"] == ["States.Timeout"]), None)
        caught = [c for c in state["Catch"] if "States.ALL" in c["ErrorEquals"]]
        assert timeout is not None or caught, f"{name}: a wait that times out must go on"
        # A timeout, like an event, leads to the step that looks at the resource.
        assert (timeout or caught[0])["Next"] == state["Next"], name
