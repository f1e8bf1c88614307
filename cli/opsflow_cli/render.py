"""How the CLI shows runs, run lists, environment plans and remediation rules: rich renderables built from the
API's JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from rich import box
from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

# How a run ends: these mean it did what was asked (or, for a dry run and a skip, rightly nothing).
GOOD_ENDINGS = frozenset({"SUCCEEDED", "DRY_RUN", "SKIPPED"})
RUNNING = "RUNNING"
_STATUS_STYLE = {
    "SUCCEEDED": "bold green",
    "DRY_RUN": "bold cyan",
    "SKIPPED": "bold cyan",
    "RUNNING": "bold yellow",
    "ABORTING": "bold yellow",
    "FAILED": "bold red",
    "ABORTED": "bold red",
    "TIMED_OUT": "bold red",
}
_STEP_MARK = {
    "succeeded": ("✓", "green"),
    "failed": ("✗", "red"),
    "milestone": ("•", "cyan"),
    "skipped": ("-", "dim"),
    "waiting": ("…", "yellow"),
}


def status_text(status: str) -> Text:
    return Text(status, style=_STATUS_STYLE.get(status, "bold"))


def local_time(stamp: str | None, with_date: bool = True) -> str:
    """An API timestamp (ISO 8601, UTC) in the reader's own time zone."""
    moment = _parse(stamp)
    if moment is None:
        return stamp or "-"
    return moment.astimezone().strftime("%a %d %b %H:%M:%S" if with_date else "%H:%M:%S")


def duration(start: str | None, end: str | None) -> str:
    began, ended = _parse(start), _parse(end)
    if began is None or ended is None:
        return "-"
    return seconds_text((ended - began).total_seconds())


def seconds_text(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def _parse(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None


def who(requester: Mapping[str, Any] | None) -> str:
    """`iam: alice` for an ARN's user or role session, else what the record says."""
    if not requester:
        return "-"
    identity = str(requester.get("identity") or "")
    short = identity.rsplit("/", 1)[-1] if identity.startswith("arn:") else identity
    return f"{requester.get('kind', '?')}: {short}" if short else str(requester.get("kind", "-"))


# Starting a run -----------------------------------------------------------------------------------


def started(body: Mapping[str, Any], replayed: bool) -> RenderableType:
    """What POST /runs answered: the run, what it will do, and how to follow it."""
    run_id = str(body.get("run_id", "?"))
    status = str(body.get("status", "?"))
    headline = Text()
    if status == "DRY_RUN":
        headline.append("Dry run ", style="bold cyan").append(run_id, style="bold")
        headline.append(": nothing was changed. A real run would:")
    elif replayed:
        headline.append("Already asked: ", style="bold yellow").append(run_id, style="bold")
        headline.append(" is ").append_text(status_text(status))
    else:
        headline.append("Started ", style="bold green").append(run_id, style="bold")
        headline.append("  ").append_text(status_text(status))
    facts = _facts([("workflow", body.get("workflow")), ("target", body.get("target"))])
    parts: list[RenderableType] = [headline, facts]
    plan = body.get("plan")
    if isinstance(plan, Mapping):
        parts += [Text("Plan", style="bold"), Padding(plan_view(plan), (0, 0, 0, 2))]
    return Group(*parts)


def plan_view(plan: Mapping[str, Any]) -> RenderableType:
    """A run's plan: numbered actions (AMI bake, ASG refresh) or per-resource changes (environment power)."""
    parts: list[RenderableType] = []
    actions = plan.get("actions")
    if isinstance(actions, list) and actions:
        numbered = Table.grid(padding=(0, 1))
        numbered.add_column(justify="right", style="dim")
        numbered.add_column()
        for index, action in enumerate(actions, 1):
            numbered.add_row(f"{index}.", str(action))
        parts.append(numbered)
    if plan.get("summary"):
        parts.append(Text(str(plan["summary"])))
    changes = plan.get("changes")
    if isinstance(changes, list) and changes:
        parts.append(changes_table(changes))
    left_alone = plan.get("left_alone")
    if isinstance(left_alone, list) and left_alone:
        parts.append(Text("Left alone: " + ", ".join(map(str, left_alone)), style="dim"))
    if not parts:
        parts.append(key_values(plan))
    return Group(*parts)


def changes_table(changes: Iterable[Mapping[str, Any]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("resource", style="bold")
    table.add_column("now")
    table.add_column("", style="dim")
    table.add_column("after")
    for change in changes:
        table.add_row(str(change.get("resource")), str(change.get("now")), "→", str(change.get("after")))
    return table


# Following a run ----------------------------------------------------------------------------------


def headline(run: Mapping[str, Any]) -> Text:
    status = str(run.get("status", "?"))
    text = Text()
    text.append(str(run.get("run_id", "?")), style="bold").append("  ")
    text.append_text(status_text(status))
    took = duration(run.get("created_at"), run.get("finished_at"))
    if status != RUNNING and took != "-":
        text.append(f" in {took}", style="dim")
    return text


def run_facts(run: Mapping[str, Any]) -> Table:
    return _facts(
        [
            ("workflow", run.get("workflow")),
            ("target", run.get("target")),
            ("asked by", who(run.get("requester"))),
            ("started", local_time(run.get("created_at"))),
        ]
    )


def step_line(step: Mapping[str, Any]) -> Text:
    """One recorded step: mark, name, its summary and how many times it polled."""
    mark, style = _STEP_MARK.get(str(step.get("status")), ("?", "yellow"))
    line = Text()
    line.append(f"{mark} ", style=style)
    line.append(f"{step.get('step', '?'):<16} ", style="bold" if step.get("status") != "milestone" else "")
    line.append(str(step.get("summary") or ""))
    attempts = int(step.get("attempts") or 1)
    if attempts > 1:
        line.append(f"  ({attempts} polls)", style="dim")
    return line


def shown_steps(run: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The steps worth a line: a polling step's `waiting` record only while it is the newest (a milestone
    recorded during the polls leaves it behind, and a later record of the same step supersedes it)."""
    steps = list(run.get("steps") or [])
    return [step for i, step in enumerate(steps) if step.get("status") != "waiting" or i == len(steps) - 1]


def live_view(run: Mapping[str, Any], waited: float | None) -> RenderableType:
    """The run as it is now; `waited` adds a spinner, for a terminal that redraws it each second."""
    steps = Table.grid(padding=(0, 0))
    for step in shown_steps(run):
        steps.add_row(step_line(step))
    parts: list[RenderableType] = [headline(run), run_facts(run), Padding(steps, (0, 0, 0, 2))]
    if run.get("status") == RUNNING and waited is not None:
        parts.append(
            Padding(
                Spinner("dots", text=Text(f"working… ({seconds_text(waited)})", style="yellow")), (0, 0, 0, 2)
            )
        )
    return Group(*parts)


def outcome(run: Mapping[str, Any]) -> RenderableType:
    """How a run ended: its result, or the error with what was rolled back."""
    status = str(run.get("status"))
    if status == RUNNING:
        return Text("Still running. Follow it: opsflow status " + str(run.get("run_id")), style="yellow")
    if status == "DRY_RUN" and isinstance(run.get("plan"), Mapping):
        return Group(
            Text("Dry run: nothing was changed. A real run would:", style="cyan"),
            Padding(plan_view(run["plan"]), (0, 0, 0, 2)),
        )
    if status in GOOD_ENDINGS:
        result = run.get("result") or run.get("output") or {}
        return _result(str(run.get("workflow")), result) if result else Text("Done.", style="green")
    return _error(run.get("error") or run.get("output") or {})


def refresh_line(refresh: Mapping[str, Any]) -> str:
    reached = ", ".join(f"{c}%" for c in refresh.get("checkpoints_reached") or []) or "none"
    line = (
        f"{refresh.get('refresh_id')} {refresh.get('status')}: version {refresh.get('previous_version')}"
        f" → {refresh.get('version')}, checkpoints reached: {reached}"
    )
    if refresh.get("default_version") is not None:
        line += f"; default version now {refresh['default_version']}"
    return line


def _environment_result(result: Mapping[str, Any]) -> RenderableType:
    """An environment stop or start: the summary, what was saved or restored, and only what went wrong."""
    rows: list[tuple[str, Any]] = [("summary", result.get("summary", ""))]
    if result.get("saved"):
        rows.append(
            ("saved", ", ".join(f"{n} {kind}" for kind, n in result["saved"].items() if n) or "nothing")
        )
    restored = result.get("restored_from") or {}
    if restored:
        rows.append(
            ("restored", f"the save of run {restored.get('run_id')} ({local_time(restored.get('saved_at'))})")
        )
    for gone in result.get("gone") or []:
        rows.append(("gone", gone))
    for failure in result.get("failed") or []:
        rows.append(("failed", f"{failure.get('resource')}: {failure.get('error')}"))
    for place in result.get("places") or []:
        rows.append(
            (
                f"{place.get('account')}/{place.get('region')}",
                f"{place.get('status')}: {place.get('summary')}",
            )
        )
    return Group(Text("Result", style="bold green"), _facts(rows))


def _result(workflow: str, result: Mapping[str, Any]) -> RenderableType:
    if workflow == "env_power":
        return _environment_result(result)
    if workflow != "ami_bake" or "image_id" not in result:
        shown = {
            k: refresh_line(v) if k == "refresh" and isinstance(v, Mapping) else v for k, v in result.items()
        }
        return Group(Text("Result", style="bold green"), key_values(shown))
    parts: list[RenderableType] = []
    rows: list[tuple[str, Any]] = [
        ("image", f"[bold]{result['image_id']}[/]  {result.get('image_name', '')}")
    ]
    published = result.get("published") or {}
    if published.get("kind") == "launch_template":
        rows.append(
            (
                "published",
                f"launch template {published.get('template_id')} version {published.get('version')}",
            )
        )
    elif published:
        rows.append(("published", f"launch configuration {published.get('name')}"))
    group = result.get("group") or {}
    if group:
        rows.append(("group", f"{group.get('name')}: {group.get('before')} → {group.get('after')}"))
    refresh = result.get("refresh")
    if isinstance(refresh, Mapping):
        rows.append(
            (
                "refresh",
                refresh_line(refresh),
            )
        )
    distribution = result.get("distribution") or {}
    for copy in distribution.get("copies") or []:
        rows.append(("copy", f"{copy.get('image_id')} in {copy.get('region')}: {copy.get('state')}"))
    for template in distribution.get("templates") or []:
        where = "/".join(str(p) for p in (template.get("account"), template.get("region")) if p)
        rows.append(
            (
                "published",
                f"launch template {template.get('name')} version {template.get('version')} in {where}",
            )
        )
    pruned = (result.get("pruned") or {}).get("deregistered") or []
    rows.append(("pruned", ", ".join(map(str, pruned)) if pruned else "nothing to prune"))
    parts.append(_facts(rows, markup=True))
    snapshots = result.get("snapshots") or []
    if snapshots:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        for column in ("device", "snapshot", "size", "type", "iops", "throughput"):
            table.add_column(column, justify="right" if column in ("size", "iops", "throughput") else "left")
        for snap in snapshots:
            table.add_row(
                str(snap.get("device")),
                str(snap.get("snapshot_id")),
                f"{snap.get('size_gib')} GiB",
                str(snap.get("volume_type")),
                str(snap.get("iops") or "-"),
                str(snap.get("throughput") or "-"),
            )
        parts.append(Padding(table, (0, 0, 0, 2)))
    for warning in result.get("warnings") or []:
        parts.append(Text(f"  warning: {warning}", style="yellow"))
    return Group(*parts)


def _error(error: Mapping[str, Any]) -> RenderableType:
    parts: list[RenderableType] = []
    failed = Text("Failed", style="bold red")
    if error.get("step"):
        failed.append(" at ", style="red").append(str(error["step"]), style="bold red")
    failed.append(f": {error.get('message') or error.get('error') or 'no reason recorded'}", style="red")
    parts.append(failed)
    rollback = error.get("rollback") or {}
    for undone in rollback.get("undone") or []:
        parts.append(Text(f"  rolled back: {undone}"))
    for problem in rollback.get("problems") or []:
        parts.append(Text(f"  NOT rolled back: {problem}", style="bold red"))
    if error.get("group_unchanged"):
        parts.append(Text("  The group is as it was before the run.", style="green"))
    for failure in error.get("failed") or []:
        parts.append(Text(f"  failed: {_compact(failure)}", style="red"))
    return Group(*parts)


# Lists and plans ----------------------------------------------------------------------------------


# Below this width the summary goes under the run id instead of into a column of its own.
WIDE_TABLE = 150


def runs_table(runs: list[Mapping[str, Any]], width: int) -> RenderableType:
    if not runs:
        return Text("No runs yet. Start one with `opsflow run`.", style="dim")
    with_summary = any(run.get("summary") for run in runs)
    summary_column = with_summary and width >= WIDE_TABLE
    table = Table(
        box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, leading=int(with_summary and not summary_column)
    )
    table.add_column("run", no_wrap=not with_summary or summary_column)
    table.add_column("target", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("asked by", no_wrap=True, overflow="ellipsis", max_width=28)
    table.add_column("started", no_wrap=True)
    table.add_column("took", justify="right", no_wrap=True, min_width=6)
    if summary_column:
        table.add_column("how it ended", ratio=1)
    for run in runs:
        status = str(run.get("status"))
        summary = str(run.get("summary") or "")
        run_cell = Text(str(run.get("run_id")), style="bold")
        if summary and not summary_column:
            run_cell.append("\n" + summary, style="dim")
        row: list[RenderableType] = [
            run_cell,
            str(run.get("target")),
            status_text(status),
            who(run.get("requester")),
            short_time(run.get("created_at")),
            "…" if status == RUNNING else duration(run.get("created_at"), run.get("finished_at")),
        ]
        if summary_column:
            row.append(summary)
        table.add_row(*row)
    return table


def accounts_table(body: Mapping[str, Any]) -> RenderableType:
    accounts = list(body.get("accounts") or [])
    hub = body.get("hub") or {}
    heading = (
        Text(f"Hub: {hub.get('account')} in {hub.get('region')} (stack {hub.get('stack')})\n", style="dim")
        if hub
        else Text("")
    )
    if not accounts:
        return Text.assemble(
            heading,
            Text(
                "No spoke accounts yet. Deploy spoke/template.yaml there, then `opsflow register-account`.",
                style="dim",
            ),
        )
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in ("account", "name", "regions", "role last assumed", "last refusal"):
        table.add_column(column, overflow="fold")
    for account in accounts:
        refusal = account.get("last_refusal")
        table.add_row(
            Text(str(account.get("account")), style="bold"),
            str(account.get("name") or ""),
            ", ".join(account.get("regions") or []),
            short_time(account.get("last_assumed_at")) if account.get("last_assumed_at") else "never",
            Text(str(refusal), style="red") if refusal else "",
        )
    return Group(heading, table) if hub else table


def short_time(stamp: str | None) -> str:
    """`05:00:01` today, `Mon 23 Nov 05:00` before, in the reader's time zone."""
    moment = _parse(stamp)
    if moment is None:
        return stamp or "-"
    mine = moment.astimezone()
    return mine.strftime(
        "%H:%M:%S" if mine.date() == datetime.now().astimezone().date() else "%a %d %b %H:%M"
    )


def environment_plan(body: Mapping[str, Any]) -> RenderableType:
    """GET /environments/{name}/plan: when the next stop and start happen and what each changes."""
    name = body.get("environment", "?")
    timezone = body.get("timezone")
    title = Text(f"Environment {name}", style="bold")
    title.append(f"  (schedule in {timezone})" if timezone else "  (no schedule set)", style="dim")
    parts: list[RenderableType] = [title]
    keep = body.get("keep_alive")
    if keep:
        parts.append(Text(f"Kept alive: {_compact(keep)}", style="yellow"))
    for key, label in (("stop", "Next stop"), ("start", "Next start")):
        section = body.get(key) or {}
        parts.append(Text())
        heading = Text(f"{label}: ", style="bold")
        heading.append_text(_when(section.get("when"), timezone))
        parts.append(heading)
        # An environment across accounts and regions: one plan each, under its account/region.
        places = section.get("places") or [section]
        if section.get("places"):
            parts.append(Padding(Text(str(section.get("summary", ""))), (0, 0, 0, 2)))
        for place in places:
            if section.get("places"):
                parts.append(
                    Padding(Text(f"{place.get('account')}/{place.get('region')}", style="bold"), (0, 0, 0, 2))
                )
            if place.get("cannot_plan"):
                parts.append(Padding(Text(str(place["cannot_plan"]), style="red"), (0, 0, 0, 4)))
                continue
            parts.append(
                Padding(
                    plan_view({k: v for k, v in place.items() if k in ("summary", "changes", "left_alone")}),
                    (0, 0, 0, 4 if section.get("places") else 2),
                )
            )
    return Group(*parts)


def _when(when: Any, timezone: Any) -> Text:
    """`Tue 24 Nov 20:00 CET (Europe/Berlin) = 19:00 your time, in 14 h 2 min` and why it acts then."""
    if not isinstance(when, Mapping) or not when.get("at"):
        reason = when.get("reason") if isinstance(when, Mapping) else None
        return Text(str(reason or "none scheduled: PUT /environments/{name} sets a schedule"), style="dim")
    stamp, _, zone_name = str(when["at"]).partition(" ")
    moment = _parse(stamp)
    if moment is None:
        text = Text(str(when["at"]), style="bold")
    else:
        zone = zone_name.strip("()") or str(timezone or "")
        text = Text(f"{moment.strftime('%a %d %b %H:%M')} {zone}".strip(), style="bold")
        mine = moment.astimezone()
        if mine.utcoffset() != moment.utcoffset():
            text.append(f" = {mine.strftime('%a %d %b %H:%M')} your time")
    if when.get("in"):
        text.append(f", in {when['in']}", style="dim")
    if when.get("reason"):
        text.append(f"\n  {when['reason']}", style="dim")
    return text


def key_values(values: Mapping[str, Any]) -> Table:
    return _facts([(key, value) for key, value in values.items() if value not in (None, [], {})])


def _facts(rows: Iterable[tuple[str, Any]], markup: bool = False) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim", no_wrap=True)
    table.add_column()
    for label, value in rows:
        if value is None:
            continue
        shown: Text | str = value if markup and isinstance(value, str) else Text(_compact(value))
        table.add_row(f"  {label}", shown)
    return table


def _compact(value: Any) -> str:
    """A value on one line: lists joined, mappings as `key value` pairs with empty entries left out."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        scalars = all(not isinstance(item, Mapping | list) for item in value)
        return (", " if scalars else "; ").join(_compact(item) for item in value)
    if isinstance(value, Mapping):
        nested = any(isinstance(item, Mapping) for item in value.values())
        return ("; " if nested else ", ").join(
            f"{key}{':' if nested else ''} {_compact(item)}"
            for key, item in value.items()
            if item not in (None, [], {})
        )
    return json.dumps(value, default=str) if not isinstance(value, int | float) else str(value)


# Remediation rules --------------------------------------------------------------------------------

_ACTION_NAMES = {
    "reboot": "reboot",
    "stop_start": "stop and start",
    "recover": "recover (stop and start on new hardware)",
    "ecs_redeploy": "ECS redeploy",
}
# How many of a rule's latest decisions `opsflow remediations get` shows; --json has all the API keeps.
DECISIONS_SHOWN = 10
CLOSE_BREAKER = "opsflow remediations close-breaker"


def trigger_text(trigger: Mapping[str, Any]) -> str:
    """What fires a rule, in a few words: `alarm web-*`, `status check (instance)`."""
    kind = trigger.get("kind")
    if kind == "alarm":
        if trigger.get("alarm_names"):
            return "alarm " + _some(trigger["alarm_names"])
        if trigger.get("alarm_name_prefix"):
            return f"alarm {trigger['alarm_name_prefix']}*"
        if trigger.get("alarm_tags"):
            return "alarm tagged " + _tags(trigger["alarm_tags"])
        return "alarm"
    if kind == "status_check":
        return f"status check ({trigger.get('check') or 'any'})"
    if kind == "ecs_tasks_stopping":
        services = trigger.get("services")
        return f"ECS tasks stopping in {trigger.get('cluster')}" + (
            f" ({_some(services)})" if services else ""
        )
    if kind == "instance_stopped":
        return "instance stopped outside Opsflow"
    return str(kind)


def action_text(action: Mapping[str, Any], with_parameters: bool = False) -> str:
    kind = str(action.get("kind"))
    if kind != "runbook":
        return _ACTION_NAMES.get(kind, kind)
    text = f"runbook {action.get('document')}"
    if action.get("document_version"):
        text += f" (version {action['document_version']})"
    parameters = action.get("parameters") or {}
    if with_parameters and parameters:
        text += " with " + "; ".join(
            f"{key}={', '.join(map(str, values))}" for key, values in parameters.items()
        )
    return text


def scope_text(rule: Mapping[str, Any]) -> str:
    """Which opted-in resources a rule may act on: by environment, group and tags."""
    scope = rule.get("scope") or {}
    parts = []
    if scope.get("environment"):
        parts.append(f"environment {scope['environment']}")
    if scope.get("asg_name"):
        parts.append(f"group {scope['asg_name']}")
    if scope.get("tags"):
        parts.append("tagged " + _tags(scope["tags"]))
    return ", ".join(parts) or "any opted-in resource"


def where_text(rule: Mapping[str, Any]) -> str:
    """`account 210987654321 in eu-west-1`, `the hub's account and region`."""
    account, region = rule.get("account"), rule.get("region")
    if not account and not region:
        return "the hub's account and region"
    return f"{f'account {account}' if account else 'the hub account'} in {region or 'the hub region'}"


def minutes_text(minutes: Any) -> str:
    """`30 min`, `2 h`, `1 d 4 h`."""
    if not isinstance(minutes, int):
        return str(minutes)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    return " ".join(f"{n} {unit}" for n, unit in ((days, "d"), (hours, "h"), (mins, "min")) if n) or "0 min"


_RULE_COLUMNS = (
    "rule", "trigger", "action", "scope", "cooldown", "breaker", "dry run", "enabled", "acting now",
)  # fmt: skip
# What SIMPLE_HEAD puts between two columns: a cell's padding either side of the separator.
_COLUMN_GAP = 3


def remediations_table(rules: list[Mapping[str, Any]], width: int) -> RenderableType:
    """GET /remediations: one row a rule, or a block each where the table would not fit on one line a rule;
    then what to do about each open breaker."""
    if not rules:
        return Text(
            "No remediation rules yet. Add one: opsflow remediations put NAME --file rule.json", style="dim"
        )
    rows = [_rule_row(body) for body in rules]
    natural = sum(
        max(cell_len(column), *(cell_len(line) for row in rows for line in row[i].plain.split("\n")))
        for i, column in enumerate(_RULE_COLUMNS)
    ) + _COLUMN_GAP * (len(_RULE_COLUMNS) - 1)
    as_table = natural <= width
    parts: list[RenderableType] = [_rules_table(rows) if as_table else _rule_blocks(rules)]
    for body in rules:
        breaker = body.get("breaker") or {}
        if breaker.get("state") == "open":
            name = body.get("name")
            parts += [
                # The blocks end with a blank line; the table does not.
                *([Text()] if as_table and len(parts) == 1 else []),
                Text.assemble(
                    (f"Breaker open on {name}", "bold red"),
                    f" since {short_time(breaker.get('opened_at'))}: it acts on nothing until closed.",
                ),
                _facts(
                    [
                        ("why", f"opsflow remediations get {name}"),
                        ("once you have looked", f"{CLOSE_BREAKER} {name}"),
                    ]
                ),
            ]
    return Group(*parts)


def _rule_row(body: Mapping[str, Any]) -> list[Text]:
    rule = body.get("rule") or {}
    scope = scope_text(rule)
    if rule.get("account") or rule.get("region"):
        scope += f"\nin {where_text(rule)}"
    # How many resources it is acting on now; `opsflow remediations get` names them.
    acting = len(body.get("under_way") or [])
    return [
        Text(str(body.get("name")), style="bold"),
        Text(trigger_text(rule.get("trigger") or {})),
        Text(action_text(rule.get("action") or {})),
        Text(scope),
        Text(minutes_text(rule.get("cooldown_minutes"))),
        _breaker_state(body),
        Text("yes", style="cyan") if rule.get("dry_run") else Text("no", style="dim"),
        Text("yes") if rule.get("enabled", True) else Text("no", style="bold yellow"),
        Text(str(acting), style="bold yellow") if acting else Text("-", style="dim"),
    ]


def _rules_table(rows: list[list[Text]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in _RULE_COLUMNS:
        table.add_column(column, justify="right" if column == "acting now" else "left")
    for row in rows:
        table.add_row(*row)
    return table


def _rule_blocks(rules: list[Mapping[str, Any]]) -> RenderableType:
    blocks: list[RenderableType] = []
    for body in rules:
        rule = body.get("rule") or {}
        first = Text(str(body.get("name")), style="bold")
        first.append(*(("  enabled", "") if rule.get("enabled", True) else ("  disabled", "bold yellow")))
        if rule.get("dry_run"):
            first.append("  dry run", style="cyan")
        first.append("  breaker ").append_text(_breaker_state(body))
        acting = len(body.get("under_way") or [])
        if acting:
            first.append(f"  acting on {acting} now", style="bold yellow")
        scope = scope_text(rule)
        if rule.get("account") or rule.get("region"):
            scope += f" in {where_text(rule)}"
        blocks += [
            first,
            Text(f"  {trigger_text(rule.get('trigger') or {})} → {action_text(rule.get('action') or {})}"),
            Text(f"  {scope}; cooldown {minutes_text(rule.get('cooldown_minutes'))}", style="dim"),
            Text(),
        ]
    return Group(*blocks)


def remediation_view(body: Mapping[str, Any]) -> RenderableType:
    """GET /remediations/{name}: the rule, its breaker, what it is acting on and cooling down, its decisions."""
    name = str(body.get("name", "?"))
    rule = body.get("rule") or {}
    enabled = bool(rule.get("enabled", True))
    title = Text(name, style="bold").append("  ")
    title.append(*(("enabled", "green") if enabled else ("disabled: no event fires it", "bold yellow")))
    title.append("  breaker ").append_text(_breaker_state(body))
    parts: list[RenderableType] = [title]
    if rule.get("description"):
        parts.append(Text(f"  {rule['description']}", style="dim"))
    if rule.get("dry_run"):
        parts.append(
            Text("  Dry run: it records what it would do and notifies; it acts on nothing.", style="cyan")
        )
    breaker = rule.get("breaker") or {}
    concurrency = rule.get("concurrency") or {}
    most = concurrency.get("max_resources", 1)
    at_once = f"at most {most} resource{'' if most == 1 else 's'}"
    if concurrency.get("max_percent"):
        at_once += f", and {concurrency['max_percent']}% of a group"
    parts.append(
        _facts(
            [
                ("trigger", trigger_text(rule.get("trigger") or {})),
                ("action", action_text(rule.get("action") or {}, with_parameters=True)),
                ("scope", scope_text(rule)),
                ("where", where_text(rule)),
                ("cooldown", f"{minutes_text(rule.get('cooldown_minutes'))} per resource, whatever fires"),
                (
                    "breaker",
                    f"opens after {breaker.get('max_actions')} actions within "
                    f"{minutes_text(breaker.get('within_minutes'))}",
                ),
                ("at once", at_once),
                ("outcome", f"the action has {minutes_text(rule.get('outcome_timeout_minutes'))} to help"),
                (
                    "updated",
                    f"{local_time(body.get('updated_at'))} by "
                    f"{who({'kind': 'iam', 'identity': body['updated_by']}) if body.get('updated_by') else '-'}",
                ),
            ]
        )
    )
    state = body.get("breaker") or {}
    if state.get("state") == "open":
        parts += [
            Text.assemble(
                ("\nBreaker open", "bold red"),
                (f" since {local_time(state.get('opened_at'))}: {state.get('reason', '')}", "red"),
            ),
            Text("  It acts on nothing until it is closed. Once you have looked:"),
            Text(f"  {CLOSE_BREAKER} {name}", style="cyan"),
        ]
    parts += _guard_sections(body)
    return Group(*parts)


def _guard_sections(body: Mapping[str, Any]) -> list[RenderableType]:
    parts: list[RenderableType] = []
    under_way = list(body.get("under_way") or [])
    if under_way:
        acting = _grid(3)
        for action in under_way:
            acting.add_row(
                Text(str(action.get("resource")), style="bold"),
                str(action.get("run_id")),
                f"since {short_time(action.get('since'))}",
            )
        parts += [Text("\nActing now", style="bold"), Padding(acting, (0, 0, 0, 2))]
    else:
        parts.append(Text("\nActing on nothing now.", style="dim"))
    cooling = list(body.get("cooling_down") or [])
    if cooling:
        table = _grid(3)
        for entry in cooling:
            table.add_row(
                Text(str(entry.get("resource")), style="bold"),
                f"until {short_time(entry.get('until'))}",
                Text(
                    str(entry.get("outcome") or ""), style=_OUTCOME_STYLE.get(str(entry.get("outcome")), "")
                ),
            )
        parts += [Text("\nCooling down", style="bold"), Padding(table, (0, 0, 0, 2))]
    decisions = list(body.get("decisions") or [])
    if not decisions:
        parts.append(Text("No decisions yet: no event has fired it.", style="dim"))
        return parts
    table = _grid(4)
    for decision in decisions[:DECISIONS_SHOWN]:
        verdict = str(decision.get("verdict"))
        reason = Text(str(decision.get("reason") or ""))
        if decision.get("run_id"):
            reason.append(f"  {decision['run_id']}", style="dim")
        table.add_row(
            short_time(decision.get("at")),
            Text(str(decision.get("resource")), style="bold"),
            Text(verdict, style="green" if verdict == "act" else "yellow"),
            reason,
        )
    parts += [Text("\nLatest decisions, newest first", style="bold"), Padding(table, (0, 0, 0, 2))]
    if len(decisions) > DECISIONS_SHOWN:
        parts.append(
            Text(f"  … and {len(decisions) - DECISIONS_SHOWN} older ones: --json shows them all", style="dim")
        )
    return parts


_OUTCOME_STYLE = {"helped": "green", "did not help": "yellow", "failed": "red"}


def _breaker_state(body: Mapping[str, Any]) -> Text:
    if (body.get("breaker") or {}).get("state") == "open":
        return Text("open", style="bold red")
    return Text("closed", style="green")


def _grid(columns: int) -> Table:
    grid = Table.grid(padding=(0, 2))
    for _ in range(columns - 1):
        grid.add_column(no_wrap=True)
    grid.add_column()
    return grid


def _some(items: list[Any], shown: int = 3) -> str:
    text = ", ".join(map(str, items[:shown]))
    return text + (f" and {len(items) - shown} more" if len(items) > shown else "")


def _tags(tags: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in tags.items())
