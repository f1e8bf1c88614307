"""The `opsflow` command: start, follow and list runs, preview environment power, manage remediation rules, and
run Opsflow locally."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from opsflow.runs import registry
from opsflow_cli import render
from opsflow_cli.client import ApiError, CliError, OpsflowClient, resolve_endpoint

app = typer.Typer(
    name="opsflow",
    help="Start and follow Opsflow runs "
    f"({', '.join(workflow.title_in_a_sentence for workflow in registry.WORKFLOWS.values())}) against a deployed "
    "stack's API or the local app (`opsflow local`).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

POLL_SECONDS = 1.0


# The choices of `opsflow run` and `opsflow runs --workflow`: every workflow the registry holds.
Workflow = StrEnum("Workflow", {name: name for name in registry.names()})


class PowerAction(StrEnum):
    stop = "stop"
    start = "start"
    restop_databases = "restop_databases"


EndpointOption = Annotated[
    str | None,
    typer.Option(
        "--endpoint",
        envvar="OPSFLOW_ENDPOINT",
        rich_help_panel="Endpoint",
        help="A deployed Opsflow's API URL (the stack's ApiUrl output). Default: the running `opsflow local`.",
        show_default=False,
    ),
]
ApiRegionOption = Annotated[
    str | None,
    typer.Option(
        "--api-region",
        rich_help_panel="Endpoint",
        help="The API's region (default: from the URL, else your AWS configuration).",
    ),
]
ProfileOption = Annotated[
    str | None,
    typer.Option(rich_help_panel="Endpoint", help="The AWS profile whose credentials sign requests."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer as it is.")]


def stdout() -> Console:
    return Console(highlight=False)


def stderr() -> Console:
    return Console(stderr=True, highlight=False)


def _client(endpoint: str | None, region: str | None, profile: str | None) -> OpsflowClient:
    return OpsflowClient(resolve_endpoint(endpoint, region, profile))


def _fail(error: CliError) -> typer.Exit:
    console = stderr()
    prefix = "Error"
    if isinstance(error, ApiError):
        prefix = f"Refused ({error.status}{' ' + error.error if error.error else ''})"
    # A 400's message repeats its problems in one line; the list below is easier to read.
    shown = "the request is not valid:" if error.problems else error.message
    message = Text(f"{prefix}: ", style="bold red").append(shown, style="red")
    console.print(message)
    # One line a field, its problem aligned and wrapped beside it.
    problems = Table.grid(padding=(0, 1, 0, 0))
    problems.add_column(style="bold red", no_wrap=True)
    problems.add_column(style="red")
    for problem in error.problems:
        problems.add_row(f"  • {problem.get('field', '?')}:", str(problem.get("problem", "")))
    if error.problems:
        console.print(problems)
    return typer.Exit(1)


def _answer(
    endpoint: str | None,
    region: str | None,
    profile: str | None,
    as_json: bool,
    call: Callable[[OpsflowClient], dict[str, Any]],
) -> dict[str, Any] | None:
    """The API's answer for a person to read, or None once it is printed as JSON; an error exits."""
    try:
        body = call(_client(endpoint, region, profile))
    except CliError as error:
        raise _fail(error) from None
    if as_json:
        _print_json(body)
        return None
    return body


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")


# Commands -----------------------------------------------------------------------------------------


@app.command()
def run(
    workflow: Annotated[Workflow, typer.Argument(help="The workflow to run.", show_default=False)],
    json_file: Annotated[
        Path | None,
        typer.Option(
            "--json-file",
            help="A run request as POST /runs takes it; flags override its fields.",
            show_default=False,
        ),
    ] = None,
    instance_id: Annotated[
        str | None,
        typer.Option(rich_help_panel="ami_bake", help="The instance to image.", show_default=False),
    ] = None,
    asg_name: Annotated[
        str | None,
        typer.Option(
            rich_help_panel="ami_bake and asg_refresh", help="The Auto Scaling group.", show_default=False
        ),
    ] = None,
    image_name: Annotated[
        str | None,
        typer.Option(
            rich_help_panel="ami_bake",
            help="Name template, e.g. '{asg_name}-{timestamp}'.",
            show_default=False,
        ),
    ] = None,
    keep_images: Annotated[
        int | None, typer.Option(rich_help_panel="ami_bake", help="Baked images to keep.", show_default=False)
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(
            rich_help_panel="ami_bake", help="An extra image tag, KEY=VALUE (repeatable).", show_default=False
        ),
    ] = None,
    launch_template_version: Annotated[
        int | None,
        typer.Option(rich_help_panel="asg_refresh", help="The version to roll onto.", show_default=False),
    ] = None,
    min_healthy_percentage: Annotated[
        int | None,
        typer.Option(rich_help_panel="asg_refresh", help="Capacity kept in service.", show_default=False),
    ] = None,
    max_healthy_percentage: Annotated[
        int | None, typer.Option(rich_help_panel="asg_refresh", help="Up to 200.", show_default=False)
    ] = None,
    instance_warmup: Annotated[
        int | None,
        typer.Option(
            rich_help_panel="asg_refresh", help="Seconds before a new instance counts.", show_default=False
        ),
    ] = None,
    alarm: Annotated[
        list[str] | None,
        typer.Option(
            rich_help_panel="asg_refresh",
            help="A CloudWatch alarm that fails it (repeatable).",
            show_default=False,
        ),
    ] = None,
    skip_matching: Annotated[
        bool | None,
        typer.Option(
            "--skip-matching",
            rich_help_panel="asg_refresh",
            help="Leave up-to-date instances alone.",
            show_default=False,
        ),
    ] = None,
    environment: Annotated[
        str | None, typer.Option(rich_help_panel="env_power", help="The environment.", show_default=False)
    ] = None,
    action: Annotated[
        PowerAction | None, typer.Option(rich_help_panel="env_power", help="What to do.", show_default=False)
    ] = None,
    account: Annotated[
        str | None,
        typer.Option(
            rich_help_panel="Where",
            help="The account the target is in (default: the hub's); it must be registered.",
            show_default=False,
        ),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            rich_help_panel="Where",
            help="The region the target is in (default: the hub's); one its account is registered for.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan and change nothing.")] = False,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Any other field, KEY=VALUE; dotted keys nest (refresh.min_healthy_percentage=50) and "
            'values are read as JSON when they parse (true, 50, ["a"]).',
            show_default=False,
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            help="The same key returns the same run instead of starting another.", show_default=False
        ),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the run until it ends, as `opsflow status`.")
    ] = False,
    endpoint: EndpointOption = None,
    api_region: ApiRegionOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start a run: `POST /runs`. Prints the run id, its status and its plan."""
    try:
        request = _read_request(json_file, workflow)
        flags: dict[str, Any] = {
            "instance_id": instance_id,
            "asg_name": asg_name,
            "image_name": image_name,
            "keep_images": keep_images,
            "tags": _pairs(tag, "--tag") if tag else None,
            "launch_template_version": launch_template_version,
            "min_healthy_percentage": min_healthy_percentage,
            "max_healthy_percentage": max_healthy_percentage,
            "instance_warmup": instance_warmup,
            "alarms": alarm or None,
            "skip_matching": skip_matching,
            "environment": environment,
            "action": action.value if action else None,
            "account": account,
            "region": region,
            "dry_run": True if dry_run else None,
        }
        request.update({field: value for field, value in flags.items() if value is not None})
        for dotted, value in _pairs(set_ or [], "--set").items():
            _assign(request, dotted, _value(value))
        client = _client(endpoint, api_region, profile)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        answer = client.post("/runs", request, headers=headers)
    except CliError as error:
        raise _fail(error) from None
    body = answer.body if isinstance(answer.body, dict) else {}
    if as_json and not wait:
        _print_json(body)
        raise typer.Exit(0)
    if not as_json:
        replayed = answer.headers.get("Idempotent-Replayed", "").lower() == "true"
        stdout().print(render.started(body, replayed))
    status = str(body.get("status"))
    run_id = str(body.get("run_id"))
    if wait and status == render.RUNNING:
        raise typer.Exit(_follow(client, run_id, as_json, announced=True))
    if not as_json and status == render.RUNNING:
        stdout().print(Text(f"\nFollow it: opsflow status {run_id}", style="cyan"))
    if as_json:
        _print_json(body)
    raise typer.Exit(0 if status in render.GOOD_ENDINGS or status == render.RUNNING else 1)


@app.command()
def status(
    run_id: Annotated[str, typer.Argument(help="The run's id, e.g. ami-bake-3f0c….", show_default=False)],
    follow: Annotated[
        bool, typer.Option("--follow/--no-follow", help="Follow the run until it ends, or print it once.")
    ] = True,
    endpoint: EndpointOption = None,
    api_region: ApiRegionOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """A run's steps and outcome: `GET /runs/{run_id}`, every second until it ends.

    Exits 0 if it succeeded (or was a dry run or a skip), 1 if it failed, was aborted or timed out;
    with `--no-follow`, a run still running exits 0."""
    try:
        client = _client(endpoint, api_region, profile)
        if follow:
            raise typer.Exit(_follow(client, run_id, as_json))
        run_view = _get_run(client, run_id)
    except CliError as error:
        raise _fail(error) from None
    if as_json:
        _print_json(run_view)
    else:
        console = stdout()
        console.print(render.live_view(run_view, waited=None))
        console.print(render.outcome(run_view))
    ended = str(run_view.get("status"))
    raise typer.Exit(0 if ended in render.GOOD_ENDINGS or ended == render.RUNNING else 1)


@app.command()
def runs(
    target: Annotated[
        str | None, typer.Option(help="Only this target, e.g. asg:web or env:qa.", show_default=False)
    ] = None,
    workflow: Annotated[Workflow | None, typer.Option(help="Only this workflow.", show_default=False)] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="How many, newest first.")] = 20,
    endpoint: EndpointOption = None,
    api_region: ApiRegionOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """The newest runs: `GET /runs`."""
    try:
        answer = _client(endpoint, api_region, profile).get(
            "/runs", {"target": target, "workflow": workflow.value if workflow else None, "limit": limit}
        )
    except CliError as error:
        raise _fail(error) from None
    if as_json:
        _print_json(answer.body)
        return
    found = list((answer.body or {}).get("runs") or [])
    console = stdout()
    console.print(render.runs_table(found, console.width))


@app.command()
def accounts(
    endpoint: EndpointOption = None,
    api_region: ApiRegionOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """The accounts Opsflow may act in, their regions and their spoke roles' last answer: `GET /accounts`."""
    try:
        answer = _client(endpoint, api_region, profile).get("/accounts")
    except CliError as error:
        raise _fail(error) from None
    if as_json:
        _print_json(answer.body)
        return
    stdout().print(render.accounts_table(answer.body or {}))


@app.command("register-account")
def register_account(
    account: Annotated[str, typer.Argument(help="The 12-digit account id.", show_default=False)],
    region: Annotated[
        list[str],
        typer.Option(help="A region Opsflow may act in there (repeatable).", show_default=False),
    ],
    name: Annotated[str, typer.Option(help="For people: qa, payments-prod.")] = "",
    endpoint: EndpointOption = None,
    api_region: ApiRegionOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register a spoke account once its spoke stack is deployed: `PUT /accounts/{account}`. Opsflow assumes
    its role first, and refuses an account it cannot reach with what to deploy."""
    try:
        answer = _client(endpoint, api_region, profile).request(
            "PUT", f"/accounts/{account}", body={"regions": region, "name": name}
        )
    except CliError as error:
        raise _fail(error) from None
    if as_json:
        _print_json(answer.body)
        return
    stdout().print(render.accounts_table({"accounts": [answer.body or {}]}))


@app.command()
def abort(
    run_id: Annotated[str, typer.Argument(help="The run to stop.", show_default=False)],
    endpoint: EndpointOption = None,
    api_region: ApiRegionOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stop a running run at once: `POST /runs/{run_id}/abort`. Its target is freed."""
    try:
        answer = _client(endpoint, api_region, profile).post(f"/runs/{run_id}/abort")
    except CliError as error:
        raise _fail(error) from None
    if as_json:
        _print_json(answer.body)
        return
    stdout().print(Text("Aborting ", style="bold yellow").append(run_id, style="bold"))
    stdout().print(Text(f"Check it: opsflow status {run_id}", style="cyan"))


@app.command()
def preview(
    environment: Annotated[
        str, typer.Argument(help="The environment (its opsflow:environment tag).", show_default=False)
    ],
    endpoint: EndpointOption = None,
    api_region: ApiRegionOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """What the next stop and start of an environment would do, and when: `GET /environments/{name}/plan`."""
    try:
        answer = _client(endpoint, api_region, profile).get(f"/environments/{environment}/plan")
    except CliError as error:
        raise _fail(error) from None
    if as_json:
        _print_json(answer.body)
        return
    stdout().print(render.environment_plan(answer.body or {}))


# Remediation rules --------------------------------------------------------------------------------

remediations_app = typer.Typer(
    name="remediations",
    help="Remediation rules: which failure events Opsflow answers, what it does, and the guards around it "
    "(cooldown, circuit breaker, how much at once).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(remediations_app)

RuleNameArgument = Annotated[
    str,
    typer.Argument(help="The rule's name: letters, digits, '_' and '-'.", show_default=False),
]


@remediations_app.command("list")
def list_remediations(
    endpoint: EndpointOption = None,
    api_region: ApiRegionOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every rule: what fires it, what it does and where, its cooldown and breaker, and what it is acting on
    now: `GET /remediations`."""
    body = _answer(endpoint, api_region, profile, as_json, lambda client: client.remediations())
    if body is None:
        return
    console = stdout()
    console.print(render.remediations_table(list(body.get("remediations") or []), console.width))


@remediations_app.command("get")
def get_remediation(
    name: RuleNameArgument,
    endpoint: EndpointOption = None,
    api_region: ApiRegionOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """One rule: its settings, its breaker, what it is acting on and cooling down, and its latest decisions:
    `GET /remediations/{name}`."""
    body = _answer(endpoint, api_region, profile, as_json, lambda client: client.remediation(name))
    if body is None:
        return
    stdout().print(render.remediation_view(body))


@remediations_app.command("put")
def put_remediation(
    name: RuleNameArgument,
    file: Annotated[
        str,
        typer.Option(
            "--file",
            "-f",
            metavar="FILE",
            help="The rule as JSON, from a file or `-` for stdin; what `get --json` prints works too.",
            show_default=False,
        ),
    ],
    endpoint: EndpointOption = None,
    api_region: ApiRegionOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create or replace a rule: `PUT /remediations/{name}`. Its account and region must be reachable, and a
    runbook must exist there with the parameters given; its cooldowns, breaker and decisions so far are
    kept."""
    try:
        rule = _read_rule(file)
    except CliError as error:
        raise _fail(error) from None
    body = _answer(endpoint, api_region, profile, as_json, lambda client: client.put_remediation(name, rule))
    if body is None:
        return
    console = stdout()
    console.print(Text("Saved ", style="bold green").append(f"remediation rule {name}", style="bold"))
    console.print(render.remediation_view(body))


@remediations_app.command("delete")
def delete_remediation(
    name: RuleNameArgument,
    endpoint: EndpointOption = None,
    api_region: ApiRegionOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Remove a rule: `DELETE /remediations/{name}`. Remediations under way finish; no new event fires it."""
    body = _answer(endpoint, api_region, profile, as_json, lambda client: client.delete_remediation(name))
    if body is None:
        return
    stdout().print(
        Text("Deleted ", style="bold").append(f"remediation rule {name}", style="bold"),
        Text("Remediations under way finish; no new event fires it.", style="dim"),
        sep="\n",
    )


@remediations_app.command("close-breaker")
def close_breaker(
    name: RuleNameArgument,
    endpoint: EndpointOption = None,
    api_region: ApiRegionOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Close a rule's circuit breaker once you have looked at why it opened:
    `DELETE /remediations/{name}/breaker`. The rule acts again, and the actions that opened it no longer
    count."""
    try:
        client = _client(endpoint, api_region, profile)
        # Read first, to say what was closed: the API answers the same for a breaker that was not open.
        before = (client.remediation(name).get("breaker") or {}) if not as_json else {}
        body = client.close_breaker(name)
    except CliError as error:
        raise _fail(error) from None
    if as_json:
        _print_json(body)
        return
    console = stdout()
    if before.get("state") == "open":
        console.print(
            Text("Closed ", style="bold green").append(f"the breaker of {name}", style="bold"),
            Text(
                f"It was open since {render.local_time(before.get('opened_at'))}: {before.get('reason', '')}",
                style="dim",
            ),
            Text("The rule acts again; the actions that opened it no longer count."),
            sep="\n",
        )
    else:
        console.print(
            Text(f"The breaker of {name} was not open.", style="bold"),
            Text("The rule acts as before; the actions it took so far no longer count toward opening it."),
            sep="\n",
        )


def _read_rule(file: str) -> dict[str, Any]:
    """The rule in `file` (or stdin for `-`): a rule as PUT takes it, or what `get --json` prints."""
    source = "stdin" if file == "-" else file
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except OSError as error:
        raise CliError(f"Cannot read {source}: {error.strerror or error}") from None
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as error:
        raise CliError(
            f"{source} is not JSON: {error.msg} at line {error.lineno}, column {error.colno}."
        ) from None
    if not isinstance(loaded, dict):
        raise CliError(
            f"{source} must hold a JSON object: a remediation rule, with trigger, action and "
            "cooldown_minutes."
        )
    # What `opsflow remediations get --json` printed: the rule is under "rule", beside its guard.
    if isinstance(loaded.get("rule"), dict) and "name" in loaded:
        return dict(loaded["rule"])
    return loaded


@app.command()
def local(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1; 0 picks a free one.")] = 8080,
    seed: Annotated[
        bool,
        typer.Option("--seed", help="Seed an instance, two groups and a QA environment to try workflows on."),
    ] = False,
) -> None:
    """Run Opsflow locally: the real template and handlers on an embedded AWS (moto), behind a SigV4 gateway.

    Runs until Ctrl-C. The other commands find it by themselves."""
    from opsflow_cli.local import serve

    try:
        serve(stdout(), port, seed)
    except OSError as error:
        raise _fail(
            CliError(f"Cannot serve on 127.0.0.1:{port}: {error.strerror or error}. Try --port 0.")
        ) from None


@app.command()
def demo() -> None:
    """Every workflow end to end on the embedded local AWS (`make demo`)."""
    from opsflow_local.demo import main

    raise typer.Exit(main())


# Following a run ----------------------------------------------------------------------------------


def _follow(client: OpsflowClient, run_id: str, as_json: bool, announced: bool = False) -> int:
    """Poll the run every second until it ends; the exit code says how it ended. `announced`: the run's
    id and plan are already on screen."""
    console = stdout()
    began = time.monotonic()
    try:
        if as_json:
            run_view = _poll_until_ended(client, run_id, lambda _: None)
        elif console.is_terminal:
            with Live(console=console, refresh_per_second=8, transient=False) as live:
                run_view = _poll_until_ended(
                    client,
                    run_id,
                    lambda view: live.update(render.live_view(view, waited=time.monotonic() - began)),
                )
        else:
            run_view = _stream(console, client, run_id, announced)
    except KeyboardInterrupt:
        console.print(
            Text(f"\nStopped following; the run goes on. Again: opsflow status {run_id}", style="yellow")
        )
        return 130
    if as_json:
        _print_json(run_view)
    else:
        console.print(render.outcome(run_view))
    return 0 if run_view.get("status") in render.GOOD_ENDINGS else 1


def _poll_until_ended(
    client: OpsflowClient, run_id: str, show: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    while True:
        run_view = _get_run(client, run_id)
        show(run_view)
        if run_view.get("status") != render.RUNNING:
            return run_view
        time.sleep(POLL_SECONDS)


def _stream(console: Console, client: OpsflowClient, run_id: str, announced: bool) -> dict[str, Any]:
    """For a log or a pipe, where a live view cannot redraw: each step once, as it is recorded."""
    shown = 0
    run_view = _get_run(client, run_id)
    if announced:
        console.print(Text("\nProgress", style="bold"))
    else:
        console.print(render.headline(run_view))
        console.print(render.run_facts(run_view))
    was_running = run_view.get("status") == render.RUNNING
    while True:
        steps = render.shown_steps(run_view)
        ended = run_view.get("status") != render.RUNNING
        # A polling step is recorded once and then updated: show it when the next one appears, or at the end.
        complete = steps if ended else steps[:-1]
        for step in complete[shown:]:
            console.print(Text("  ").append_text(render.step_line(step)))
        shown = max(shown, len(complete))
        if ended:
            if was_running:
                console.print(render.headline(run_view))
            return run_view
        time.sleep(POLL_SECONDS)
        run_view = _get_run(client, run_id)


def _get_run(client: OpsflowClient, run_id: str) -> dict[str, Any]:
    body = client.get(f"/runs/{run_id}").body
    if not isinstance(body, dict):
        raise CliError(f"GET /runs/{run_id} answered something other than a run: {body!r}")
    return body


# Requests -----------------------------------------------------------------------------------------


def _read_request(json_file: Path | None, workflow: Workflow) -> dict[str, Any]:
    if json_file is None:
        return {"workflow": workflow.value}
    try:
        loaded = json.loads(json_file.read_text(encoding="utf-8"))
    except OSError as error:
        raise CliError(f"Cannot read {json_file}: {error.strerror}") from None
    except ValueError as error:
        raise CliError(f"{json_file} is not JSON: {error}") from None
    if not isinstance(loaded, dict):
        raise CliError(f"{json_file} must hold a JSON object: a run request as POST /runs takes it.")
    if loaded.get("workflow", workflow.value) != workflow.value:
        raise CliError(
            f"{json_file} asks for workflow {loaded['workflow']!r}, the command for {workflow.value!r}."
        )
    return {**loaded, "workflow": workflow.value}


def _pairs(items: list[str], option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CliError(f"{option} takes KEY=VALUE; got {item!r}.")
        pairs[key.strip()] = value
    return pairs


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _assign(request: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = request
    for name in parents:
        child = node.get(name)
        if not isinstance(child, dict):
            child = node[name] = {}
        node = child
    node[leaf] = value


if __name__ == "__main__":
    app()
