"""The `opsflow` CLI against the real app: the embedded runtime behind its SigV4-checking gateway, found
through the state file `opsflow local` writes, and `opsflow local` itself as a user starts it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsflow_cli.main import app
from opsflow_cli.state import LocalEndpoint, write_local
from opsflow_local import EmbeddedAws, seed
from opsflow_local.gateway import Gateway

RUN_ID = re.compile(r"\b(ami-bake-[0-9a-f]{24})\b")
WIDE = {"COLUMNS": "200"}


@pytest.fixture(scope="module")
def aws() -> Iterator[EmbeddedAws]:
    with EmbeddedAws() as embedded:
        yield embedded


@pytest.fixture(scope="module")
def gateway(aws: EmbeddedAws) -> Iterator[Gateway]:
    with aws.serve() as served:
        yield served


@pytest.fixture(scope="module")
def seeded(aws: EmbeddedAws) -> dict[str, str]:
    net = seed.network(aws)
    instance_id = seed.instance(aws, net, "app-1")
    seed.launch_template_group(aws, net, "web")
    seed.environment(aws, net, "qa")
    schedule = {"timezone": "Europe/Berlin", "stop_at": "20:00", "start_at": "07:00"}
    assert aws.api.put("/environments/qa", json=schedule).status_code == 200
    return {"instance_id": instance_id}


@pytest.fixture
def local_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gateway: Gateway) -> Path:
    """A state file pointing at the in-process gateway, as `opsflow local` writes one."""
    monkeypatch.setenv("OPSFLOW_HOME", str(tmp_path))
    monkeypatch.delenv("OPSFLOW_ENDPOINT", raising=False)
    write_local(LocalEndpoint(url=gateway.url, region="us-east-1", pid=os.getpid()))
    return tmp_path


@pytest.fixture(scope="module")
def baked(
    gateway: Gateway, seeded: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str]:
    """A bake started and followed through the CLI: (its output, its run id)."""
    home = tmp_path_factory.mktemp("home")
    env = {**WIDE, "OPSFLOW_HOME": str(home)}
    state = {"url": gateway.url, "region": "us-east-1", "pid": os.getpid()}
    (home / "local.json").write_text(json.dumps(state))
    result = CliRunner().invoke(
        app,
        ["run", "ami_bake", "--instance-id", seeded["instance_id"], "--asg-name", "web", "--wait"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    found = RUN_ID.search(result.output)
    assert found, result.output
    return result.output, found[1]


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=WIDE)
    return result.exit_code, result.output


def test_run_wait_shows_the_plan_each_step_and_the_image(
    aws: EmbeddedAws, baked: tuple[str, str], local_home: Path
) -> None:
    output, run_id = baked

    assert f"Started {run_id}" in output
    assert "Create an image of" in output  # the plan
    for step in ("guard", "create_image", "check_image", "publish", "point_group", "prune"):
        assert re.search(rf"✓ {step}\s", output), output
    # The image is awaited by its event (or one reconcile interval), then checked once: no polling.
    assert not re.search(r"check_image\s.*polls", output), output
    image_id = aws.wait_for_run(run_id)["output"]["image_id"]
    assert f"{run_id}  SUCCEEDED" in output
    assert re.search(rf"image\s+{image_id}\s+web-\d{{8}}-\d{{6}}", output)
    assert "launch template" in output
    assert "version 2" in output
    assert "/dev/sdb" in output
    assert "100 GiB" in output


def test_status_of_an_ended_run_prints_it_and_exits_0(baked: tuple[str, str], local_home: Path) -> None:
    _, run_id = baked

    code, output = invoke("status", run_id)

    assert code == 0, output
    assert f"{run_id}  SUCCEEDED" in output
    assert "asked by  iam: opsflow-local" in output
    assert "✓ point_group" in output


def test_status_json_is_the_api_answer(baked: tuple[str, str], local_home: Path) -> None:
    _, run_id = baked

    code, output = invoke("status", run_id, "--no-follow", "--json")

    assert code == 0
    assert json.loads(output)["run_id"] == run_id


def test_runs_lists_the_run(baked: tuple[str, str], local_home: Path) -> None:
    _, run_id = baked

    code, output = invoke("runs", "--target", "asg:web")

    assert code == 0, output
    row = next(line for line in output.splitlines() if run_id in line)
    assert "asg:web" in row
    assert "SUCCEEDED" in row
    assert "iam: opsflow-local" in row


def test_preview_shows_when_and_what_changes(seeded: dict[str, str], local_home: Path) -> None:
    code, output = invoke("preview", "qa")

    assert code == 0, output
    assert "Environment qa" in output
    assert "Europe/Berlin" in output
    assert re.search(r"Next stop: \w{3} \d\d \w{3} 20:00 CE", output), output
    assert re.search(r"Next start: \w{3} \d\d \w{3} 07:00 CE", output), output
    assert re.search(
        r"auto scaling group qa-jobs\s+min 1 / desired 3 / max 6\s+→\s+min 0 / desired 0", output
    )
    assert "Nothing to restore" in output


def test_a_dry_run_prints_the_plan_and_changes_nothing(seeded: dict[str, str], local_home: Path) -> None:
    code, output = invoke("run", "env_power", "--environment", "qa", "--action", "stop", "--dry-run")

    assert code == 0, output
    assert "Dry run env-power-" in output
    assert "nothing was changed" in output
    assert re.search(r"ecs service qa-api\s+desired 2\s+→\s+desired 0", output)


def test_bad_input_prints_the_field_problem_and_exits_1(local_home: Path) -> None:
    result = CliRunner().invoke(
        app, ["run", "ami_bake", "--instance-id", "nope", "--asg-name", "web"], env=WIDE
    )

    assert result.exit_code == 1
    assert "Refused (400 ValidationError)" in result.stderr
    assert re.search(r"• instance_id: string should match pattern", result.stderr), result.stderr


def test_a_target_in_an_unregistered_account_is_refused_with_the_stack_to_deploy(local_home: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["run", "asg_refresh", "--asg-name", "web", "--account", "210987654321", "--region", "eu-west-1"],
        env=WIDE,
    )

    assert result.exit_code == 1
    assert "Refused (422 AccountNotRegistered)" in result.stderr
    assert "spoke/template.yaml" in result.stderr
    assert "210987654321" in result.stderr


def test_accounts_shows_the_hub_and_says_how_to_add_a_spoke(local_home: Path) -> None:
    result = CliRunner().invoke(app, ["accounts"], env=WIDE)

    assert result.exit_code == 0, result.output
    assert "Hub: 123456789012 in us-east-1 (stack opsflow)" in result.stdout
    assert "opsflow register-account" in result.stdout


def test_register_account_refuses_an_account_without_the_spoke_stack(local_home: Path) -> None:
    result = CliRunner().invoke(app, ["register-account", "210987654321", "--region", "us-east-1"], env=WIDE)

    assert result.exit_code == 1
    assert "SpokeUnreachable" in result.stderr
    assert "arn:aws:iam::210987654321:role/opsflow-spoke-api" in result.stderr


def test_an_unknown_run_is_refused_with_the_api_message(local_home: Path) -> None:
    result = CliRunner().invoke(app, ["status", "ami-bake-nope", "--no-follow"], env=WIDE)

    assert result.exit_code == 1
    assert "Refused (404 NotFound): no run ami-bake-nope" in result.stderr


def test_set_and_json_file_fill_the_request(seeded: dict[str, str], local_home: Path, tmp_path: Path) -> None:
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"workflow": "ami_bake", "asg_name": "web", "keep_images": 3}))

    code, output = invoke(
        "run", "ami_bake", "--json-file", str(request), "--instance-id", seeded["instance_id"],
        "--set", "tags.team=payments", "--dry-run", "--json",
    )  # fmt: skip

    assert code == 0, output
    answer = json.loads(output)
    assert answer["status"] == "DRY_RUN"
    assert "Keep the 3 newest images" in answer["plan"]["actions"][-1]


def test_without_an_endpoint_the_error_says_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSFLOW_HOME", str(tmp_path))
    monkeypatch.delenv("OPSFLOW_ENDPOINT", raising=False)

    result = CliRunner().invoke(app, ["runs"], env=WIDE)

    assert result.exit_code == 1
    assert "No Opsflow endpoint" in result.stderr
    assert "opsflow local" in result.stderr
    assert "--endpoint" in result.stderr


def test_a_stale_state_file_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSFLOW_HOME", str(tmp_path))
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    write_local(LocalEndpoint(url="http://127.0.0.1:9/v1", region="us-east-1", pid=int(dead.stdout)))

    result = CliRunner().invoke(app, ["runs"], env=WIDE)

    assert result.exit_code == 1
    assert "No Opsflow endpoint" in result.stderr


def test_nothing_listening_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSFLOW_HOME", str(tmp_path))

    result = CliRunner().invoke(app, ["runs", "--endpoint", "http://127.0.0.1:9/v1"], env=WIDE)

    assert result.exit_code == 1
    assert "No Opsflow at http://127.0.0.1:9/v1: start `opsflow local` or pass --endpoint" in result.stderr


def test_opsflow_local_serves_clients_in_other_processes(tmp_path: Path) -> None:
    """`opsflow local --seed` in one terminal, `opsflow run` and `opsflow status` in another."""
    env = {**os.environ, "OPSFLOW_HOME": str(tmp_path), "PYTHONUNBUFFERED": "1", **WIDE}
    command = [sys.executable, "-m", "opsflow_cli.main"]
    log = tmp_path / "local.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [*command, "local", "--port", "0", "--seed"], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    try:
        state = tmp_path / "local.json"
        deadline = time.monotonic() + 30
        while not state.exists() or "Press Ctrl-C" not in log.read_text():
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        banner = log.read_text()
        assert json.loads(state.read_text())["url"] in banner
        assert "access key testing / secret testing / session token testing" in banner
        example = re.search(r"opsflow run ami_bake --instance-id (i-[0-9a-f]+) --asg-name web --wait", banner)
        assert example, banner

        bake = subprocess.run(
            [*command, "run", "ami_bake", "--instance-id", example[1], "--asg-name", "legacy-batch"],
            capture_output=True, text=True, env=env, timeout=30,
        )  # fmt: skip
        assert bake.returncode == 0, bake.stderr
        run_id = RUN_ID.search(bake.stdout)
        assert run_id, bake.stdout
        assert f"Follow it: opsflow status {run_id[1]}" in bake.stdout

        status = subprocess.run(
            [*command, "status", run_id[1]], capture_output=True, text=True, env=env, timeout=30
        )
        assert status.returncode == 0, status.stdout + status.stderr
        assert f"{run_id[1]}  SUCCEEDED" in status.stdout
        assert re.search(r"published\s+launch configuration legacy-batch-", status.stdout), status.stdout
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert not state.exists(), "opsflow local removes its state file when it stops"


def test_a_failed_run_shows_the_error_and_the_rollback_and_exits_1(
    aws: EmbeddedAws, seeded: dict[str, str], baked: tuple[str, str], local_home: Path
) -> None:
    aws.emulation.ec2.fail_next_image("Snapshot of /dev/sdc failed: the volume was detached")

    code, output = invoke(
        "run", "ami_bake", "--instance-id", seeded["instance_id"], "--asg-name", "web",
        "--image-name", "{asg_name}-retry-{timestamp}", "--wait",
    )  # fmt: skip

    assert code == 1, output
    assert re.search(r"✗ check_image\s", output), output
    assert "Failed at check_image: ImageFailed" in output
    assert "the volume was detached" in output
    assert re.search(r"rolled back: deregistered image ami-", output)
    assert "The group is as it was before the run." in output
