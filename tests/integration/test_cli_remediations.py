"""`opsflow remediations` against the real app: the embedded runtime behind its SigV4-checking gateway, found
through the state file `opsflow local` writes. A rule is put from a file or stdin, listed, shown with its
guard, its open breaker closed, and deleted; a bad rule's 400 is shown field by field."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from opsflow.remediation import guard
from opsflow.remediation.guard import Asked
from opsflow.store.remediations import DynamoRemediationStore
from opsflow_cli.main import app
from opsflow_cli.state import LocalEndpoint, write_local
from opsflow_local import EmbeddedAws
from opsflow_local.gateway import Gateway

WIDE = {"COLUMNS": "200"}
REBOOT: dict[str, Any] = {
    "description": "Reboot a web instance whose instance status check fails",
    "trigger": {"kind": "status_check", "check": "instance"},
    "action": {"kind": "reboot"},
    "scope": {"environment": "prod", "asg_name": "web"},
    "cooldown_minutes": 30,
    "breaker": {"max_actions": 3, "within_minutes": 60},
    "concurrency": {"max_resources": 2, "max_percent": 25},
}


@pytest.fixture(scope="module")
def aws() -> Iterator[EmbeddedAws]:
    with EmbeddedAws() as embedded:
        yield embedded


@pytest.fixture(scope="module")
def gateway(aws: EmbeddedAws) -> Iterator[Gateway]:
    with aws.serve() as served:
        yield served


@pytest.fixture(autouse=True)
def local_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws: EmbeddedAws, gateway: Gateway
) -> Iterator[Path]:
    """A state file pointing at the in-process gateway, as `opsflow local` writes one; no rules after."""
    monkeypatch.setenv("OPSFLOW_HOME", str(tmp_path))
    monkeypatch.delenv("OPSFLOW_ENDPOINT", raising=False)
    write_local(LocalEndpoint(url=gateway.url, region="us-east-1", pid=os.getpid()))
    yield tmp_path
    for rule in aws.api.get("/remediations").json()["remediations"]:
        aws.api.delete(f"/remediations/{rule['name']}")


def opsflow(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=WIDE, input=stdin)


def shown(result: Result) -> str:
    """What the command printed, without the spaces a table pads its lines with."""
    return "\n".join(line.rstrip() for line in result.stdout.splitlines()) + "\n"


def rule_file(tmp_path: Path, rule: Any) -> str:
    path = tmp_path / "rule.json"
    path.write_text(json.dumps(rule))
    return str(path)


def put(tmp_path: Path, name: str, rule: dict[str, Any]) -> None:
    result = opsflow("remediations", "put", name, "--file", rule_file(tmp_path, rule))
    assert result.exit_code == 0, result.output


def open_the_breaker(aws: EmbeddedAws, name: str) -> None:
    """Four failure events decided as the remediation workflow decides them: three acted on, the first two of
    which did not help and the third still under way, and the fourth refused by the breaker they opened."""
    store = DynamoRemediationStore(aws.client("dynamodb"), aws.resource_name("RemediationsTable"))
    now = datetime.now(UTC)
    for n in range(4):

        def decide(rule: Any, record: Any, n: int = n) -> Any:
            outcome = guard.decide(rule, record, Asked(f"i-{n}", f"run-{n}"), now)
            ended = guard.finish(outcome.guard, f"run-{n}", "did not help") if n < 2 else outcome.guard
            return ended, outcome

        store.change_guard(name, decide)


def test_put_from_a_file_saves_the_rule_and_shows_it(tmp_path: Path) -> None:
    result = opsflow("remediations", "put", "web-reboot", "--file", rule_file(tmp_path, REBOOT))

    assert result.exit_code == 0, result.output
    out = shown(result)
    assert "Saved remediation rule web-reboot" in out
    assert re.search(r"web-reboot\s+enabled\s+breaker closed", out), out
    assert "Reboot a web instance whose instance status check fails" in out
    assert re.search(r"trigger\s+status check \(instance\)\n", out), out
    assert re.search(r"action\s+reboot\n", out), out
    assert re.search(r"scope\s+environment prod, group web\n", out), out
    assert re.search(r"where\s+the hub's account and region\n", out), out
    assert re.search(r"cooldown\s+30 min per resource", out), out
    assert re.search(r"breaker\s+opens after 3 actions within 1 h\n", out), out
    assert re.search(r"at once\s+at most 2 resources, and 25% of a group\n", out), out
    assert re.search(r"updated\s+.* by iam: opsflow-local\n", out), out
    assert "Acting on nothing now." in out
    assert "No decisions yet" in out


def test_list_shows_a_row_a_rule(tmp_path: Path) -> None:
    put(tmp_path, "web-reboot", REBOOT)
    put(
        tmp_path,
        "api-redeploy",
        {
            "trigger": {"kind": "ecs_tasks_stopping", "cluster": "prod", "services": ["api"]},
            "action": {"kind": "ecs_redeploy"},
            "cooldown_minutes": 90,
            "region": "us-east-1",
            "dry_run": True,
            "enabled": False,
        },
    )

    result = opsflow("remediations", "list")

    assert result.exit_code == 0, result.output
    header, *rows = (line for line in result.stdout.splitlines() if line.strip() and "─" not in line)
    assert header.split() == [
        "rule", "trigger", "action", "scope", "cooldown", "breaker", "dry", "run", "enabled", "acting", "now",
    ]  # fmt: skip
    [api] = [row for row in rows if row.startswith("api-redeploy")]
    assert re.search(
        r"api-redeploy\s+ECS tasks stopping in prod \(api\)\s+ECS redeploy\s+any opted-in resource\s+"
        r"1 h 30 min\s+closed\s+yes\s+no\s+-",
        api,
    ), api
    assert re.search(r"^\s+in the hub account in us-east-1", result.stdout, re.MULTILINE), result.stdout
    [web] = [row for row in rows if row.startswith("web-reboot")]
    assert re.search(
        r"web-reboot\s+status check \(instance\)\s+reboot\s+environment prod, group web\s+30 min\s+closed\s+"
        r"no\s+yes\s+-",
        web,
    ), web
    assert "Breaker open" not in result.stdout


def test_on_a_narrow_terminal_list_shows_a_block_a_rule(aws: EmbeddedAws, tmp_path: Path) -> None:
    put(tmp_path, "web-reboot", REBOOT)
    put(tmp_path, "web-watch", {**REBOOT, "dry_run": True, "enabled": False, "cooldown_minutes": 1440})
    open_the_breaker(aws, "web-reboot")

    result = CliRunner().invoke(app, ["remediations", "list"], env={"COLUMNS": "80"})

    assert result.exit_code == 0, result.output
    blocks = shown(result).split("\n\n")
    assert blocks[:2] == [
        "web-reboot  enabled  breaker open  acting on 1 now\n"
        "  status check (instance) → reboot\n"
        "  environment prod, group web; cooldown 30 min",
        "web-watch  disabled  dry run  breaker closed\n"
        "  status check (instance) → reboot\n"
        "  environment prod, group web; cooldown 1 d",
    ]
    footer = blocks[2].splitlines()
    assert re.fullmatch(r"Breaker open on web-reboot since \S+: it acts on nothing until closed\.", footer[0])
    assert footer[1:] == [
        "  why                   opsflow remediations get web-reboot",
        "  once you have looked  opsflow remediations close-breaker web-reboot",
    ]


def test_list_json_is_the_api_answer(tmp_path: Path) -> None:
    put(tmp_path, "web-reboot", REBOOT)

    result = opsflow("remediations", "list", "--json")

    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["count"] == 1
    assert answer["remediations"][0]["rule"]["scope"]["asg_name"] == "web"


def test_with_no_rules_list_says_how_to_add_one() -> None:
    result = opsflow("remediations", "list")

    assert result.exit_code == 0, result.output
    assert (
        "No remediation rules yet. Add one: opsflow remediations put NAME --file rule.json" in result.stdout
    )


def test_put_reads_stdin_and_takes_back_what_get_json_printed(tmp_path: Path) -> None:
    runbook = {
        **REBOOT,
        "action": {
            "kind": "runbook",
            "document": "AWS-RestartEC2Instance",
            "parameters": {"InstanceId": ["{{resource}}"]},
        },
    }
    saved = opsflow("remediations", "put", "web-restart", "-f", "-", "--json", stdin=json.dumps(runbook))
    assert saved.exit_code == 0, saved.output
    exported = opsflow("remediations", "get", "web-restart", "--json").stdout
    assert json.loads(exported)["rule"] == json.loads(saved.stdout)["rule"]

    edited = json.loads(exported)
    edited["rule"]["cooldown_minutes"] = 120
    again = opsflow("remediations", "put", "web-restart", "--file", "-", stdin=json.dumps(edited))

    assert again.exit_code == 0, again.output
    out = shown(again)
    assert re.search(r"action\s+runbook AWS-RestartEC2Instance with InstanceId=\{\{resource\}\}\n", out), out
    assert re.search(r"cooldown\s+2 h per resource", out), out


def test_a_bad_rule_is_refused_field_by_field_and_nothing_is_stored(tmp_path: Path) -> None:
    bad = {**REBOOT, "action": {"kind": "terminate"}, "cooldown_minutes": 0, "breaker": {"max_actions": 0}}

    result = opsflow("remediations", "put", "web-reboot", "--file", rule_file(tmp_path, bad))

    assert result.exit_code == 1
    assert result.stdout == ""
    lines = [line.rstrip() for line in result.stderr.splitlines()]
    assert lines[0] == "Refused (400 ValidationError): the request is not valid:"
    # One line a field, the problems aligned beside them.
    assert re.fullmatch(r"  • action\.kind: +'terminate' is not one of: reboot, .*runbook", lines[1]), lines
    assert lines[2:] == [
        "  • cooldown_minutes:    input should be greater than or equal to 1",
        "  • breaker.max_actions: input should be greater than or equal to 1",
    ]
    missing = opsflow("remediations", "get", "web-reboot")
    assert missing.exit_code == 1
    assert "Refused (404 NotFound): no remediation web-reboot" in missing.stderr


def test_an_open_breaker_is_shown_and_closed(aws: EmbeddedAws, tmp_path: Path) -> None:
    put(tmp_path, "web-reboot", REBOOT)
    open_the_breaker(aws, "web-reboot")

    listed = opsflow("remediations", "list")
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.stdout.splitlines() if line.startswith("web-reboot"))
    assert re.search(r"30 min\s+open\s+no\s+yes\s+1$", row), row
    assert re.search(r"Breaker open on web-reboot since \S+: it acts on nothing until closed", listed.stdout)
    assert re.search(r"once you have looked\s+opsflow remediations close-breaker web-reboot", listed.stdout)

    got = opsflow("remediations", "get", "web-reboot")
    assert got.exit_code == 0, got.output
    view = shown(got)
    assert re.search(r"web-reboot\s+enabled\s+breaker open", view), view
    assert re.search(r"Breaker open since .*: 3 actions within 60 min \(the limit is 3\)", view), view
    assert re.search(r"Acting now\n  i-2\s+run-2\s+since \S+\n", view), view
    cooling = view.split("Cooling down\n")[1].split("\n\n")[0].splitlines()
    assert [line.split()[0] for line in cooling] == ["i-0", "i-1"]
    assert all(re.search(r"until \S+\s+did not help$", line) for line in cooling), cooling
    decisions = view.split("Latest decisions, newest first\n")[1].splitlines()
    assert [line.split()[1:3] for line in decisions[:4]] == [
        ["i-3", "skip"], ["i-2", "act"], ["i-1", "act"], ["i-0", "act"],
    ]  # fmt: skip
    assert "run-0" in decisions[3]

    closed = opsflow("remediations", "close-breaker", "web-reboot")
    assert closed.exit_code == 0, closed.output
    assert "Closed the breaker of web-reboot" in closed.stdout
    assert re.search(r"It was open since .*: 3 actions within 60 min", closed.stdout)
    assert "The rule acts again" in closed.stdout
    after = opsflow("remediations", "get", "web-reboot", "--json")
    assert json.loads(after.stdout)["breaker"] == {"state": "closed"}

    again = opsflow("remediations", "close-breaker", "web-reboot")
    assert again.exit_code == 0, again.output
    assert "The breaker of web-reboot was not open" in again.stdout


def test_delete_removes_the_rule(tmp_path: Path) -> None:
    put(tmp_path, "web-reboot", REBOOT)

    result = opsflow("remediations", "delete", "web-reboot")

    assert result.exit_code == 0, result.output
    assert "Deleted remediation rule web-reboot" in result.stdout
    assert "Remediations under way finish" in result.stdout
    assert "web-reboot" not in opsflow("remediations", "list").stdout
    gone = opsflow("remediations", "delete", "web-reboot")
    assert gone.exit_code == 1
    assert "Refused (404 NotFound): no remediation web-reboot" in gone.stderr


def test_close_breaker_of_an_unknown_rule_is_refused() -> None:
    result = opsflow("remediations", "close-breaker", "nothing-here")

    assert result.exit_code == 1
    assert "Refused (404 NotFound): no remediation nothing-here" in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "{",
            "rule.json is not JSON: Expecting property name enclosed in double quotes at line 1, column 2.",
        ),
        ("[]", "rule.json must hold a JSON object: a remediation rule, with trigger, action and"),
    ],
)
def test_a_file_that_is_not_a_rule_is_refused_before_any_request(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "rule.json"
    path.write_text(content)

    result = opsflow("remediations", "put", "web-reboot", "--file", str(path))

    assert result.exit_code == 1
    assert message in result.stderr.replace(str(tmp_path) + os.sep, "")


def test_a_missing_file_and_a_bad_name_are_clear_errors(tmp_path: Path) -> None:
    missing = opsflow("remediations", "put", "web-reboot", "--file", str(tmp_path / "nope.json"))
    assert missing.exit_code == 1
    assert "Cannot read" in missing.stderr
    assert "No such file or directory" in missing.stderr

    bad_name = opsflow("remediations", "get", "web reboot")
    assert bad_name.exit_code == 1
    assert "'web reboot' is not a rule name" in bad_name.stderr
