"""Environment power's steps on the shared runner: stop an environment for the night, saving what ran
(`stop`), start exactly that again (`start`), and end the run (`results`).

The state machine's state stays small (Step Functions caps it at 256 KB): each step reads the save from
DynamoDB rather than carrying thousands of ids from step to step.
"""

from __future__ import annotations

from collections.abc import Callable

from opsflow.runs.config import OptIn, StepsConfig
from opsflow.runs.steps import Step, StepRunner, acted_on, steps_runner
from opsflow.waits.awaiting import Await
from opsflow.workflows.env_power import results, start, stop
from opsflow.workflows.env_power.inventory import PowerAws, environment_tags
from opsflow.workflows.env_power.state import EnvPowerState

# The schedules Lambda's daily database check reaches these through this module.


def step_table(
    aws: PowerAws, opt_in: OptIn, environment_key: str, run_status: Callable[[str], str | None]
) -> dict[str, Step | Await]:
    def tags(state: EnvPowerState) -> dict[str, str]:
        return environment_tags(state.environment, opt_in, environment_key)

    return {
        "save": lambda state: stop.save_capacity(state, aws, opt_in, environment_key, run_status),
        "stop_services": lambda state: stop.stop_services(state, aws),
        "stop_groups": lambda state: stop.stop_groups(state, aws),
        "stop_instances": lambda state: stop.stop_instances(state, aws),
        "stop_databases": lambda state: stop.stop_databases(state, aws),
        "restop_databases": lambda state: stop.restop_databases(state, aws),
        "load_save": lambda state: start.load_save(state, aws),
        "start_databases": lambda state: start.start_databases(state, aws),
        # Ended by the databases' RDS events (stopped: start it now; started), or a look after the interval.
        "await_databases": Await(
            awaited=start.database_targets, ready=lambda state: start.databases_moved(state, aws)
        ),
        "databases_ready": lambda state: start.databases_ready(state, aws),
        "start_instances": lambda state: start.start_instances(state, aws, tags(state)),
        "restore_groups": lambda state: start.restore_groups(state, aws, tags(state)),
        "restore_services": lambda state: start.restore_services(state, aws),
        "settle_save": lambda state: results.settle_save(state, aws),
        "place_failed": results.place_failed,
        "conclude": results.conclude,
    }


def build_runner(config: StepsConfig) -> StepRunner:
    runs = config.run_store()

    def run_status(run_id: str) -> str | None:
        run = runs.get(run_id)
        return run.status if run else None

    return steps_runner(
        config,
        lambda state: step_table(
            PowerAws.at(config.capacity_table, acted_on(state)),
            config.opt_in,
            config.environment_tag_key,
            run_status,
        ),
        results.run_result,
        results.run_error,
        state_model=EnvPowerState,
    )
