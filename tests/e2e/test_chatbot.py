"""Slack through AWS Chatbot: the payload a channel sends with `@aws lambda invoke`, answered in one line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from opsflow_local import EmbeddedAws, seed

from .waiting import wait_until_waiting_for_its_image


def say(aws: EmbeddedAws, payload: object) -> str:
    reply = aws.lambdas.invoke(aws.resource_name("CommandFunction"), payload)
    assert isinstance(reply, str)
    return reply


def run_id_in(reply: str) -> str:
    return next(word for word in reply.split() if word.startswith(("ami-bake-", "env-power-")))


def test_a_run_request_from_the_channel_starts_a_run_recorded_with_chatbot_as_requester(
    aws: EmbeddedAws, net: seed.Network
) -> None:
    seed.launch_template_group(aws, net, "web")
    instance_id = seed.instance(aws, net, "app-1")

    reply = say(
        aws,
        {"workflow": "ami_bake", "instance_id": instance_id, "asg_name": "web", "requested_by": "@alice"},
    )

    assert reply.startswith("Run ami-bake-")
    assert '{"command": "status"' in reply
    run_id = run_id_in(reply)
    run = aws.wait_for_run(run_id)
    assert run["status"] == "SUCCEEDED"
    assert run["requester"] == {"kind": "chatbot", "identity": "AWS Chatbot (@alice)"}
    listed = aws.api.get("/runs?target=asg:web").json()["runs"]
    assert [r["run_id"] for r in listed] == [run_id]
    assert listed[0]["requester"]["kind"] == "chatbot"
    status = say(aws, {"command": "status", "run_id": run_id})
    assert f"Run {run_id} (ami_bake, asg:web) is SUCCEEDED." in status


def test_bad_input_gets_the_same_precise_message_as_the_api(aws: EmbeddedAws) -> None:
    reply = say(aws, {"workflow": "ami_bake", "instance_id": "i-nope", "asg_name": "web"})
    api = aws.api.post("/runs", json={"workflow": "ami_bake", "instance_id": "i-nope", "asg_name": "web"})

    assert reply == api.json()["message"]
    assert api.json()["problems"][0]["field"] == "instance_id"
    assert "Unknown command 'reboot'" in say(aws, {"command": "reboot"})


def test_keep_alive_and_abort_from_the_channel(aws: EmbeddedAws, net: seed.Network) -> None:
    seed.launch_template_group(aws, net, "web")
    until = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)

    kept = say(
        aws, {"command": "keep_alive", "environment": "qa", "until": until.isoformat(), "reason": "demo"}
    )

    assert kept.startswith("qa stays up until")
    keep = aws.api.put(
        "/environments/qa", json={"timezone": "UTC", "stop_at": "20:00", "start_at": "07:00"}
    ).json()["keep_alive"]
    assert keep["by"] == "AWS Chatbot"
    assert keep["active"] is True

    aws.emulation.ec2.image_pending_seconds = 3600
    started = say(
        aws, {"workflow": "ami_bake", "instance_id": seed.instance(aws, net, "app-1"), "asg_name": "web"}
    )
    wait_until_waiting_for_its_image(aws, run_id_in(started))
    aborted = say(aws, {"command": "abort", "run_id": run_id_in(started)})

    assert "is being stopped" in aborted
    ended = aws.wait_for_run(run_id_in(started))
    assert ended["status"] == "ABORTED", (ended["error"], ended["steps"])


def test_the_same_command_sent_twice_acts_once_and_answers_the_same(
    aws: EmbeddedAws, net: seed.Network
) -> None:
    seed.launch_template_group(aws, net, "web")
    payload = {"workflow": "ami_bake", "instance_id": seed.instance(aws, net, "app-1"), "asg_name": "web"}

    first = say(aws, payload)
    second = say(aws, payload)

    assert second == first
    assert len(aws.api.get("/runs?target=asg:web").json()["runs"]) == 1
    aws.wait_for_run(run_id_in(first))
