"""The embedded runtime reads template.yaml as CloudFormation would."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsflow_local.template import Template, TemplateError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.load(ROOT / "template.yaml", "eu-west-1")


def test_short_form_intrinsics_are_read(template: Template) -> None:
    env = template.function_properties("ApiFunction")["Environment"]["Variables"]
    assert env["RUNS_TABLE"] == {"Ref": "RunsTable"}
    assert template.resolve(env["RUNS_TABLE"]) == "opsflow-RunsTable"
    assert template.resolve(env["STATE_MACHINE_ARN_PREFIX"]) == (
        "arn:aws:states:eu-west-1:123456789012:stateMachine:opsflow-"
    )


def test_globals_merge_into_each_function(template: Template) -> None:
    api = template.function_properties("ApiFunction")
    steps = template.function_properties("AmiBakeStepsFunction")
    assert api["Runtime"] == steps["Runtime"] == "python3.11"
    assert "SCHEDULE_GROUP" in api["Environment"]["Variables"]
    assert "SCHEDULE_GROUP" not in steps["Environment"]["Variables"]
    assert "STATE_MACHINE_ARN_PREFIX" in steps["Environment"]["Variables"]
    assert "LOCKS_TABLE" in steps["Environment"]["Variables"]
    assert api["Timeout"] == 29
    assert steps["Timeout"] == 120


def test_sub_with_attributes_and_pseudo_parameters(template: Template) -> None:
    assert template.resolve({"Fn::Sub": "${AWS::Region}/${AmiBakeStateMachine.Name}/${!Literal}"}) == (
        "eu-west-1/opsflow-ami-bake/${Literal}"
    )
    assert template.resolve({"Fn::Sub": ["${x}-${AWS::AccountId}", {"x": {"Ref": "LockTtlSeconds"}}]}) == (
        "21600-123456789012"
    )


def test_parameters_can_be_overridden() -> None:
    template = Template.load(ROOT / "template.yaml", "us-east-1", overrides={"ReconcileSeconds": 60})
    assert template.ref("ReconcileSeconds") == 60


def test_an_intrinsic_the_runtime_cannot_honour_fails_loudly(template: Template) -> None:
    with pytest.raises(TemplateError, match="Fn::FindInMap"):
        template.resolve({"Fn::FindInMap": ["A", "B", "C"]})


def test_log_groups_and_queue_names_resolve_as_cloudformation_names_them(template: Template) -> None:
    assert template.resolve({"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}) == (
        "arn:aws:logs:eu-west-1:123456789012:log-group:opsflow-ApiAccessLogGroup:*"
    )
    assert template.resolve({"Fn::GetAtt": ["NotifyDeadLetterQueue", "QueueName"]}) == (
        "opsflow-NotifyDeadLetterQueue"
    )
    with pytest.raises(TemplateError, match="QueueName"):
        template.resolve({"Fn::GetAtt": ["RunsTable", "QueueName"]})


def test_a_log_group_named_in_the_template_keeps_its_name(template: Template) -> None:
    assert template.ref("ApiFunctionLogs") == "/aws/lambda/opsflow-ApiFunction"
    assert template.arn("ApiFunctionLogs") == (
        "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/opsflow-ApiFunction:*"
    )


def test_each_workflow_finds_its_state_machine_from_the_arn_prefix(template: Template) -> None:
    from opsflow.runs import registry

    for function in ("ApiFunction", "CommandFunction", "ScheduleFunction", "PipelineFunction"):
        variables = template.function_properties(function)["Environment"]["Variables"]
        prefix = template.resolve(variables["STATE_MACHINE_ARN_PREFIX"])
        derived = {workflow.state_machine_arn(prefix) for workflow in registry.WORKFLOWS.values()}
        assert derived == {template.ref(m) for m in template.resources("AWS::Serverless::StateMachine")}


def test_a_secrets_ref_is_its_arn_known_before_it_exists(template: Template) -> None:
    arn = template.ref("CiHookSecret")

    assert arn.startswith("arn:aws:secretsmanager:eu-west-1:123456789012:secret:opsflow-CiHookSecret-")
    assert len(arn.rsplit("-", 1)[1]) == 6
    assert template.resolve({"Fn::GetAtt": ["ApiFunction", "Arn"]}) != arn
    assert Template.load(ROOT / "template.yaml", "eu-west-1").ref("CiHookSecret") == arn
