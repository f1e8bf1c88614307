"""`opsflow local`: the embedded app (template.yaml on moto, in-process) behind its SigV4-checking gateway,
until Ctrl-C; optionally seeded with resources to run workflows against."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from opsflow_cli.client import LOCAL_CREDENTIALS
from opsflow_cli.state import LocalEndpoint, clear_local, write_local

if TYPE_CHECKING:
    from pathlib import Path

    from opsflow_local import EmbeddedAws

QA_SCHEDULE = {
    "timezone": "Europe/Berlin",
    "stop_at": "20:00",
    "start_at": "07:00",
    "holidays": {"country": "DE", "subdivision": "BY"},
}


@dataclass(frozen=True)
class Seeded:
    instance_id: str
    template_id: str
    legacy_configuration: str
    environment: str
    environment_instances: list[str]


def serve(console: Console, port: int, with_seed: bool) -> None:
    from opsflow_local import EmbeddedAws

    began = time.monotonic()
    console.print("Starting the embedded Opsflow app (template.yaml on moto, in this process)…", style="dim")
    stop = threading.Event()
    _stop_on_sigterm(stop)
    with EmbeddedAws() as aws, aws.serve(port=port) as gateway:
        seeded = _seed(aws) if with_seed else None
        endpoint = LocalEndpoint(url=gateway.url, region=aws.region, pid=os.getpid())
        path = write_local(endpoint)
        try:
            _announce(console, endpoint, path, seeded, time.monotonic() - began, aws.time_scale)
            try:
                while not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
            console.print("\nStopping the local Opsflow…", style="dim")
        finally:
            clear_local(endpoint.pid)


def _stop_on_sigterm(stop: threading.Event) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handle)


def _seed(aws: EmbeddedAws) -> Seeded:
    # Imported here: moto takes a second to import, and the client commands never need it.
    from opsflow_local import seed

    net = seed.network(aws)
    instance_id = seed.instance(aws, net, "app-1")
    template_id = seed.launch_template_group(aws, net, "web")
    configuration = seed.launch_configuration_group(aws, net, "legacy-batch")
    environment = seed.environment(aws, net, "qa")
    # A schedule, so `opsflow preview qa` can say when the next stop and start happen.
    aws.api.put("/environments/qa", json=QA_SCHEDULE)
    return Seeded(instance_id, template_id, configuration, environment.name, environment.instances)


def _announce(
    console: Console,
    endpoint: LocalEndpoint,
    path: Path,
    seeded: Seeded | None,
    took: float,
    time_scale: float,
) -> None:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim")
    facts.add_column()
    facts.add_row("API", Text(endpoint.url, style="bold cyan"))
    facts.add_row("region", endpoint.region)
    facts.add_row(
        "credentials",
        f"access key {LOCAL_CREDENTIALS.access_key} / secret {LOCAL_CREDENTIALS.secret_key} / "
        f"session token {LOCAL_CREDENTIALS.token} (SigV4, service execute-api)",
    )
    facts.add_row("state file", str(path))
    facts.add_row("speed", f"Step Functions waits and AWS delays {1 / time_scale:.0f}x faster than on AWS")
    console.print(
        Panel(facts, title=f"Opsflow local is ready ({took:.1f} s)", title_align="left", border_style="green")
    )
    console.print(
        "The opsflow commands (run, status, runs, abort, preview, remediations) find this endpoint through the "
        "state file and sign with these credentials by themselves. Other SigV4 clients work too:"
    )
    console.print(
        f"  awscurl --service execute-api --region {endpoint.region} --access_key testing --secret_key testing "
        f"--security_token testing {endpoint.url}/runs",
        style="cyan",
        soft_wrap=True,
    )
    if seeded is not None:
        console.print()
        console.print("Seeded", style="bold")
        seeds = Table.grid(padding=(0, 2))
        seeds.add_column(style="dim")
        seeds.add_column()
        seeds.add_row("instance", f"[bold]{seeded.instance_id}[/] app-1: three EBS volumes, opted in")
        seeds.add_row("group web", f"on launch template {seeded.template_id} version 1, 2 instances")
        seeds.add_row("group legacy-batch", f"on launch configuration {seeded.legacy_configuration}")
        seeds.add_row(
            f"environment {seeded.environment}",
            f"{len(seeded.environment_instances)} instances, 2 groups, 2 ECS services, PostgreSQL and Aurora; "
            "stops 20:00, starts 07:00 Europe/Berlin",
        )
        console.print(seeds)
        console.print()
        console.print("Try, in another terminal:", style="bold")
        for example in (
            f"opsflow run ami_bake --instance-id {seeded.instance_id} --asg-name web --wait",
            f"opsflow run ami_bake --instance-id {seeded.instance_id} --asg-name legacy-batch --dry-run",
            "opsflow run asg_refresh --asg-name web --min-healthy-percentage 50 --instance-warmup 30 --wait",
            f"opsflow preview {seeded.environment}",
            f"opsflow run env_power --environment {seeded.environment} --action stop --wait",
            "opsflow runs",
        ):
            console.print(f"  {example}", style="cyan", highlight=False, soft_wrap=True)
    console.print()
    console.print("Press Ctrl-C to stop.", style="dim")
