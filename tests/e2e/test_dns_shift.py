"""DNS cutover end to end on the embedded runtime, with the Route 53 emulation: each change is PENDING before
it is INSYNC, and health checks report per checker region; weights are read back from Route 53 itself."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from opsflow_local import EmbeddedAws, seed

ALICE = "arn:aws:iam::123456789012:user/alice"
# Holds shorter than the 60 s TTL are lengthened to it: the plan below holds each step 60 s.
STEPS = {"type": "steps", "steps": [{"percent": 10}, {"percent": 50}, {"percent": 100}]}


@pytest.fixture
def site(aws: EmbeddedAws) -> seed.WeightedSite:
    return seed.weighted_site(aws)


def start(aws: EmbeddedAws, request: dict[str, Any]) -> str:
    response = aws.api.post("/runs", json=request, principal=ALICE)
    assert response.status_code == 202, response.json()
    return str(response.json()["run_id"])


def weights(aws: EmbeddedAws, site: seed.WeightedSite) -> dict[str, int]:
    sets = aws.client("route53").list_resource_record_sets(
        HostedZoneId=site.hosted_zone_id, StartRecordName=site.record_name
    )["ResourceRecordSets"]
    return {s["SetIdentifier"]: int(s["Weight"]) for s in sets if "SetIdentifier" in s}


def wait_for(what: str, condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(0.02)


def test_a_cutover_moves_www_in_three_steps_each_insync_and_held_at_least_the_ttl(
    aws: EmbeddedAws, site: seed.WeightedSite
) -> None:
    run = aws.wait_for_run(start(aws, site.request(traffic=STEPS, bake_seconds=0)), timeout=90)

    assert run["status"] == "SUCCEEDED", run["error"]
    assert weights(aws, site) == {"us-east-1": 0, "eu-west-1": 100}
    assert run["output"]["weights"] == [10, 50, 100]
    assert "each step INSYNC and held at least the 60 s TTL" in run["output"]["summary"]
    # Each share's gates were first watched once its change was INSYNC.
    order = [(s["step"], s["summary"]) for s in run["steps"] if s["status"] == "succeeded"]
    for index, (step, _) in enumerate(order):
        if step == "watch":
            assert order[index - 1][0] == "check_sync"
            assert order[index - 1][1].endswith("is INSYNC")
    # The new set's own health check was the gate, read while each share was held.
    assert run["plan"]["spec"]["health_checks"] == [site.health_checks["eu-west-1"]]
    assert [step["hold_seconds"] for step in run["plan"]["spec"]["traffic"]] == [60, 60, 60]


def test_a_share_is_not_held_or_watched_until_its_change_is_insync(
    aws: EmbeddedAws, site: seed.WeightedSite
) -> None:
    aws.emulation.route53.hold_changes()
    run_id = start(aws, site.request(traffic=STEPS, bake_seconds=0))
    wait_for("10% on eu-west-1", lambda: weights(aws, site)["eu-west-1"] == 10)
    time.sleep(1.5)  # 150 s of Route 53 time: more than two holds' worth
    waiting = aws.api.get(f"/runs/{run_id}", principal=ALICE).json()
    assert waiting["status"] == "RUNNING"
    assert weights(aws, site)["eu-west-1"] == 10
    assert [s["step"] for s in waiting["steps"]].count("watch") == 0
    aws.emulation.route53.release_changes()
    run = aws.wait_for_run(run_id, timeout=90)

    assert run["status"] == "SUCCEEDED", run["error"]
    assert weights(aws, site) == {"us-east-1": 0, "eu-west-1": 100}


def test_a_failing_health_check_at_50_percent_puts_the_weights_back_within_the_step(
    aws: EmbeddedAws, site: seed.WeightedSite
) -> None:
    health_check = site.health_checks["eu-west-1"]
    plan = {
        "type": "steps",
        "steps": [{"percent": 10}, {"percent": 50, "hold_seconds": 600}, {"percent": 100}],
    }
    run_id = start(aws, site.request(traffic=plan))
    wait_for("50% on eu-west-1", lambda: weights(aws, site)["eu-west-1"] == 50)
    # Seven of the eight checker regions fail: 12.5 % healthy is below Route 53's 18 %.
    aws.emulation.route53.set_unhealthy(health_check, failing=7)
    run = aws.wait_for_run(run_id, timeout=60)

    assert run["status"] == "FAILED"
    assert weights(aws, site) == {"us-east-1": 100, "eu-west-1": 0}
    error = run["error"]
    assert error["gate"] == "health check"
    assert error["weight"] == 50
    assert (
        f"Route 53 health check {health_check} is unhealthy (1 of 8 checkers report success)"
        in error["message"]
    )
    assert "503" in error["message"]
    assert error["rollback"]["problems"] == []
    assert error["weights"] == [10, 50]
    assert "record www.example.com CNAME back to 100% us-east-1 from 50% eu-west-1" in error["message"]
    [failed] = [n for n in aws.notifications if n.platform == "slack" and "failed" in n.text]
    assert failed.text == "❌ DNS cutover failed: www.example.com"
    said = str(failed.payload)
    assert "health check at 50% on eu-west-1" in said
    assert "The health check gate failed at 50% on eu-west-1 (step 2 of 3)" in said
    assert f"#ListRecordSets/{site.hosted_zone_id}" in said


def test_one_healthy_checker_in_five_keeps_the_cutover_going(
    aws: EmbeddedAws, site: seed.WeightedSite
) -> None:
    # Two of eight checkers (25 %) report success: above the 18 % Route 53 needs, so the endpoint is healthy.
    aws.emulation.route53.set_unhealthy(site.health_checks["eu-west-1"], failing=6)
    run = aws.wait_for_run(start(aws, site.request(traffic=STEPS, bake_seconds=0)), timeout=90)

    assert run["status"] == "SUCCEEDED", run["error"]
    assert weights(aws, site) == {"us-east-1": 0, "eu-west-1": 100}


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"record_name": "api.example.com"}, "record_name", "has no weighted record sets"),
        ({"to": "ap-south-1"}, "to", "has no weighted set 'ap-south-1'"),
        ({"hosted_zone_id": "Z0000000000000NOPE"}, "hosted_zone_id", "does not exist"),
        ({"health_checks": ["0b1c2d3e-nope"]}, "health_checks", "does not exist"),
    ],
)
def test_bad_requests_are_refused_naming_the_field_and_change_nothing(
    aws: EmbeddedAws, site: seed.WeightedSite, change: dict[str, Any], field: str, says: str
) -> None:
    response = aws.api.post("/runs", json=site.request(**change), principal=ALICE)

    assert 400 <= response.status_code < 500, response.json()
    body = response.text
    assert field in body
    assert says in body
    assert weights(aws, site) == {"us-east-1": 100, "eu-west-1": 0}
    assert (
        aws.client("stepfunctions").list_executions(
            stateMachineArn=aws.state_machine_arn("DnsShiftStateMachine")
        )["executions"]
        == []
    )


def test_a_zone_without_the_opt_in_tag_is_refused(aws: EmbeddedAws) -> None:
    site = seed.weighted_site(aws, domain="example.org", opted_in=False)
    response = aws.api.post("/runs", json=site.request(), principal=ALICE)

    assert response.status_code == 403, response.json()
    assert "tag it opsflow:managed=true" in response.text


def test_an_abort_mid_cutover_puts_the_weights_back_at_once(
    aws: EmbeddedAws, site: seed.WeightedSite
) -> None:
    plan = {"type": "steps", "steps": [{"percent": 30, "hold_seconds": 3600}, {"percent": 100}]}
    run_id = start(aws, site.request(traffic=plan))
    wait_for("30% on eu-west-1", lambda: weights(aws, site)["eu-west-1"] == 30)

    assert aws.api.post(f"/runs/{run_id}/abort", principal=ALICE).status_code == 202
    wait_for("the weights put back", lambda: weights(aws, site) == {"us-east-1": 100, "eu-west-1": 0})
    wait_for(
        "the put-back recorded",
        lambda: (aws.api.get(f"/runs/{run_id}").json().get("error") or {}).get("rollback", {}).get("undone"),
    )
    run = aws.api.get(f"/runs/{run_id}").json()

    assert run["status"] == "ABORTED"
    assert run["error"]["rollback"]["undone"] == [
        "record www.example.com CNAME back to eu-west-1 0, us-east-1 100 from 30% on eu-west-1"
    ]


def test_a_dry_run_lists_each_step_and_changes_nothing(aws: EmbeddedAws, site: seed.WeightedSite) -> None:
    response = aws.api.post("/runs", json=site.request(traffic=STEPS, dry_run=True), principal=ALICE)

    assert response.status_code == 200, response.json()
    actions = response.json()["plan"]["actions"]
    assert actions[0] == (
        "Shift www.example.com CNAME from us-east-1 to eu-west-1 (weights now: eu-west-1 0, us-east-1 100), "
        f"watching health check {site.health_checks['eu-west-1']}"
    )
    assert actions[1:4] == [
        f"Set eu-west-1 to {percent}%, wait until Route 53 is INSYNC, hold 60 s" for percent in (10, 50, 100)
    ]
    assert (
        actions[-1]
        == "On any failed gate: put the weights back to eu-west-1 0, us-east-1 100 within the step"
    )
    assert weights(aws, site) == {"us-east-1": 100, "eu-west-1": 0}


def test_a_second_cutover_of_the_same_name_is_refused_while_one_runs(
    aws: EmbeddedAws, site: seed.WeightedSite
) -> None:
    plan = {"type": "steps", "steps": [{"percent": 10, "hold_seconds": 3600}, {"percent": 100}]}
    run_id = start(aws, site.request(traffic=plan))
    # The same name, written another way, is the same target.
    response = aws.api.post(
        "/runs", json=site.request(record_name="WWW.example.com.", to="us-east-1"), principal=ALICE
    )

    assert response.status_code == 409, response.json()
    assert run_id in response.text
    assert aws.api.post(f"/runs/{run_id}/abort", principal=ALICE).status_code == 202


@pytest.fixture
def endpoint() -> Iterator[dict[str, Any]]:
    """The new region's endpoint: answers `status` (200 until a test changes it) to every GET."""
    state: dict[str, Any] = {"status": 200}

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(state["status"])
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{server.server_port}/health"
    try:
        yield state
    finally:
        server.shutdown()


def test_a_smoke_url_answering_503_at_50_percent_puts_the_weights_back(
    aws: EmbeddedAws, site: seed.WeightedSite, endpoint: dict[str, Any]
) -> None:
    plan = {
        "type": "steps",
        "steps": [{"percent": 10}, {"percent": 50, "hold_seconds": 600}, {"percent": 100}],
    }
    run_id = start(aws, site.request(traffic=plan, health_checks=[], smoke_test={"url": endpoint["url"]}))
    wait_for("50% on eu-west-1", lambda: weights(aws, site)["eu-west-1"] == 50)
    endpoint["status"] = 503
    run = aws.wait_for_run(run_id, timeout=60)

    assert run["status"] == "FAILED"
    assert weights(aws, site) == {"us-east-1": 100, "eu-west-1": 0}
    assert run["error"]["gate"] == "smoke test"
    assert f"smoke test GET {endpoint['url']} answered 503, not 2xx" in run["error"]["message"]
    # Only the smoke test was watched: the request named no health check.
    assert run["plan"]["spec"]["health_checks"] == []
