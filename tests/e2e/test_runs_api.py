"""The audit trail through the API: recent runs by target and workflow, and aborting a run."""

from __future__ import annotations

from opsflow_local import EmbeddedAws, seed

from .waiting import notifications_about, wait_until_waiting_for_its_image

ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:iam::123456789012:user/bob"


def test_recent_runs_are_listed_newest_first_by_target_and_workflow(
    aws: EmbeddedAws, net: seed.Network
) -> None:
    seed.launch_template_group(aws, net, "web")
    instance_id = seed.instance(aws, net, "app-1")
    seed.environment(aws, net, "qa")
    bake = aws.api.post(
        "/runs", json={"workflow": "ami_bake", "instance_id": instance_id, "asg_name": "web"}, principal=ALICE
    ).json()
    aws.wait_for_run(bake["run_id"])
    stop = aws.api.post(
        "/runs", json={"workflow": "env_power", "environment": "qa", "action": "stop"}, principal=BOB
    ).json()
    aws.wait_for_run(stop["run_id"])

    by_target = aws.api.get("/runs?target=asg:web").json()
    by_workflow = aws.api.get("/runs?workflow=env_power").json()
    everything = aws.api.get("/runs?limit=5").json()

    assert [r["run_id"] for r in by_target["runs"]] == [bake["run_id"]]
    assert by_target["runs"][0]["requester"] == {"kind": "iam", "identity": ALICE}
    assert by_target["runs"][0]["status"] == "SUCCEEDED"
    assert by_target["runs"][0]["summary"].startswith("Baked ami-")
    assert [r["run_id"] for r in by_workflow["runs"]] == [stop["run_id"]]
    assert by_workflow["runs"][0]["summary"].startswith("Stopped qa:")
    assert [r["run_id"] for r in everything["runs"]] == [stop["run_id"], bake["run_id"]]
    assert aws.api.get("/runs?workflow=reboot").status_code == 400


def test_abort_stops_a_run_at_once_and_frees_its_target(aws: EmbeddedAws, net: seed.Network) -> None:
    seed.launch_template_group(aws, net, "web")
    request = {"workflow": "ami_bake", "instance_id": seed.instance(aws, net, "app-1"), "asg_name": "web"}
    aws.emulation.ec2.image_pending_seconds = 3600
    first = aws.api.post("/runs", json=request, principal=ALICE).json()

    wait_until_waiting_for_its_image(aws, first["run_id"])
    aborted = aws.api.post(f"/runs/{first['run_id']}/abort", principal=BOB)

    assert aborted.status_code == 202, aborted.json()
    run = aws.wait_for_run(first["run_id"])
    assert any("aborted" in n.text.lower() for n in notifications_about(aws, first["run_id"])), [
        n.text for n in aws.notifications
    ]
    assert aws.api.get(f"/runs/{first['run_id']}").json()["status"] == "ABORTED"
    assert run["status"] == "ABORTED"
    again = aws.api.post(f"/runs/{first['run_id']}/abort", principal=BOB)
    assert again.status_code == 422
    assert "nothing to abort" in again.json()["message"]
    assert aws.api.post("/runs/no-such-run/abort").status_code == 404
    assert aws.api.post("/runs", json={**request, "keep_images": 4}, principal=ALICE).status_code == 202
