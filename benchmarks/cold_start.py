"""Cold start: the import of each Lambda handler beside the bare import of the libraries it needs, and the
zipped size of the layer they all load.

    .venv/bin/python benchmarks/cold_start.py [--repeat 15] [--layer DIR | --no-layer]

What is timed. Each handler (functions/<name>/app.py) is imported in a fresh Python process, as a Lambda
cold start imports it: `python -S` with only the function's directory, the layer's opsflow package and the
layer's pinned dependencies on sys.path (no development packages: moto brings `requests`, which the X-Ray
SDK would otherwise find and patch), and the environment Lambda sets (LAMBDA_TASK_ROOT and the rest), so
that Powertools' Tracer is enabled as `Tracing: Active` enables it. What is timed is the CPU time
(`time.process_time`) from just before the import to just after it: an import is CPU-bound, and a busy
machine inflates CPU time far less than wall time; the interpreter's own start-up is the same for both and
left out. Each figure is the minimum of --repeat runs, each handler's back to back with its stand-in's;
the minimum, because noise only ever adds time (on a shared machine, a lot of it: a few runs are not
enough, and a ratio that moves by 0.1 between two runs of the script is noise). One discarded run first writes the bytecode caches, so both sides are timed with
bytecode cached.

What "the libraries it needs" means. For each handler, a stand-in that imports the library pieces the
handler uses and makes the library objects the handler makes at module level, and nothing of Opsflow:
- every handler: `boto3` (all AWS calls go through opsflow.aws.clients); pydantic's `BaseModel`, `Field`,
  `TypeAdapter` and validators, plus one one-field model, so that pydantic's one-off work on a first model
  counts as the library's and the building of each of Opsflow's models as Opsflow's; Powertools' `Logger`
  and `Tracer`, one of each made at module level (making a Tracer imports the X-Ray SDK and, with tracing
  enabled, patches what it can: that is the price of keeping the Tracer, so it is the library's);
- api: Powertools' event_handler: `APIGatewayRestResolver(enable_validation=True)`, its OpenAPI params and
  exceptions, `correlation_paths`;
- command, pipeline, schedule: Powertools' idempotency utility (a repeated delivery gets the first answer);
- notify: Powertools' parameters utility (the webhook secrets).
Nothing else counts as a library: other packages the layer ships (slack_sdk, holidays) are the handler's
own weight, and the `beyond` column lists every third-party package a handler's import loads that its
stand-in does not. The import times neither side's first invocation: what a handler imports when a route
or a channel first needs it is paid there instead, by the invocations that need it.

The layer's size is that of what layers/opsflow/Makefile builds for `sam build` (arm64 wheels from PyPI),
zipped with deflate as SAM uploads it, or of an existing build (`--layer`, else .aws-sam/build/OpsflowLayer
when present). Building needs PyPI and nothing else; builds are kept in build/cold_start/, keyed by the
hash of layers/opsflow/requirements.txt, and opsflow itself is copied afresh every run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ROOT / "functions"
LAYER_SOURCE = ROOT / "layers" / "opsflow"
REQUIREMENTS = LAYER_SOURCE / "requirements.txt"
BUILDS = ROOT / "build" / "cold_start"
SAM_BUILD = ROOT / ".aws-sam" / "build" / "OpsflowLayer"
TARGET_RATIO = 1.3
# Lambda's quotas: a zip uploaded directly, and a function with all its layers, unzipped.
ZIPPED_QUOTA_MB = 50
UNZIPPED_QUOTA_MB = 250

COMMON = (
    "import boto3",
    "from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, "
    "model_validator",
    "from aws_lambda_powertools import Logger, Tracer",
    "from aws_lambda_powertools.utilities.typing import LambdaContext",
    "class Probe(BaseModel):\n    value: int = Field(default=0, ge=0)",
    'logger = Logger(service="stand-in")',
    'tracer = Tracer(service="stand-in")',
)
EVENT_HANDLER = (
    "from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types",
    "from aws_lambda_powertools.event_handler.exceptions import NotFoundError",
    "from aws_lambda_powertools.event_handler.openapi.exceptions import RequestUnsupportedContentType, "
    "RequestValidationError",
    "from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query",
    "from aws_lambda_powertools.logging import correlation_paths",
    "app = APIGatewayRestResolver(enable_validation=True)",
)
IDEMPOTENCY = (
    "from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, "
    "idempotent_function",
)
PARAMETERS = ("from aws_lambda_powertools.utilities import parameters",)


@dataclass(frozen=True)
class Handler:
    name: str
    uses: str  # the Powertools pieces beyond Logger and Tracer, for the table
    libraries: tuple[str, ...]  # the stand-in's statements
    # The steps function serves one workflow, named by its WORKFLOW variable; its workflow's code loads
    # when the handler builds its runner, on the first invocation of the cold start: timed with the import.
    workflow: str | None = None

    @property
    def directory(self) -> Path:
        return FUNCTIONS / ("steps" if self.workflow else self.name)

    @property
    def body(self) -> str:
        return "import app\napp.runner()" if self.workflow else "import app"

    @property
    def environment(self) -> dict[str, str]:
        if not self.workflow:
            return {}
        return {
            "WORKFLOW": self.workflow,
            "RUNS_TABLE": "runs",
            "LOCKS_TABLE": "locks",
            "CAPACITY_TABLE": "capacity",
        }


HANDLERS = (
    Handler("api", "event_handler", COMMON + EVENT_HANDLER),
    Handler("command", "idempotency", COMMON + IDEMPOTENCY),
    Handler("pipeline", "idempotency", COMMON + IDEMPOTENCY),
    Handler("schedule", "idempotency", COMMON + IDEMPOTENCY),
    Handler("notify", "parameters", COMMON + PARAMETERS),
    Handler("run_ended", "", COMMON),
    Handler("steps ami_bake", "", COMMON, workflow="ami_bake"),
    Handler("steps asg_refresh", "", COMMON, workflow="asg_refresh"),
    Handler("steps env_power", "", COMMON, workflow="env_power"),
    Handler("steps ecs_blue_green", "", COMMON, workflow="ecs_blue_green"),
)

# What runs in each fresh process: the timed statements, then what they left in sys.modules.
PROBE = """\
import sys, time
sys.path[:0] = {path!r}
began = time.process_time()
{body}
elapsed = time.process_time() - began
import json
print(json.dumps({{"ms": elapsed * 1000, "modules": sorted(sys.modules)}}))
"""


@dataclass(frozen=True)
class Sample:
    ms: float
    modules: frozenset[str]


def build(command: list[str]) -> None:
    """Run a build step; its output (pip's warnings) is shown only when it fails."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")


def requirements_digest() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]


def host_dependencies() -> Path:
    """The layer's pinned dependencies for this machine's platform: what the timed imports load."""
    target = BUILDS / f"host-{requirements_digest()}" / "python"
    if not target.exists():
        print(f"installing the layer's dependencies for this machine into {target.relative_to(ROOT)} ...")
        BUILDS.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=BUILDS))
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        build([*pip, "--only-binary=:all:", "--target", str(staging / "python"), "-r", str(REQUIREMENTS)])
        target.parent.mkdir(parents=True, exist_ok=True)
        (staging / "python").rename(target)
        shutil.rmtree(staging)
    return target


def lambda_environment(task_root: Path) -> dict[str, str]:
    """What the Lambda runtime sets that Powertools reads (LAMBDA_TASK_ROOT enables the Tracer), and the
    template's Globals that matter at import."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": str(task_root),
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        "AWS_LAMBDA_FUNCTION_NAME": f"opsflow-{task_root.name}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "_HANDLER": "app.handler",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


@dataclass(frozen=True)
class Program:
    """What one fresh process imports: a handler from its directory, or a stand-in from an empty one."""

    task_root: Path
    body: str
    environment: dict[str, str] = field(default_factory=dict)

    def run(self, dependencies: Path) -> Sample:
        path = [str(self.task_root), str(LAYER_SOURCE / "python"), str(dependencies)]
        done = subprocess.run(
            [sys.executable, "-S", "-c", PROBE.format(path=path, body=self.body)],
            env={**lambda_environment(self.task_root), **self.environment},
            cwd=self.task_root,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"{self.task_root.name}: the import failed:\n{done.stderr}")
        result = json.loads(done.stdout.splitlines()[-1])
        return Sample(ms=result["ms"], modules=frozenset(result["modules"]))


def beyond(handler_modules: frozenset[str], library_modules: frozenset[str]) -> list[str]:
    """Third-party packages (Powertools by utility) the handler loads and its stand-in does not."""
    found = set()
    for module in handler_modules - library_modules:
        parts = module.split(".")
        if parts[0] in sys.stdlib_module_names or parts[0] in ("app", "opsflow", "__main__"):
            continue
        found.add(".".join(parts[:3]) if parts[0] == "aws_lambda_powertools" else parts[0])
    # A Powertools utility counts once, not once per submodule.
    return sorted(name for name in found if not any(name.startswith(f"{other}.") for other in found))


def time_imports(repeat: int) -> None:
    dependencies = host_dependencies()
    with tempfile.TemporaryDirectory() as empty:
        pairs = {
            handler.name: (
                Program(handler.directory, handler.body, handler.environment),
                Program(Path(empty), "\n".join(handler.libraries)),
            )
            for handler in HANDLERS
        }
        for pair in pairs.values():  # writes the bytecode caches; not timed
            for program in pair:
                program.run(dependencies)
        best: dict[str, list[Sample]] = {}
        for _ in range(repeat):
            # Each handler back to back with its stand-in, so that both see much the same load, and as many
            # runs of one as of the other: a minimum falls with the number of runs it is taken over.
            for name, pair in pairs.items():
                taken = [program.run(dependencies) for program in pair]
                best[name] = [
                    min(old, new, key=lambda s: s.ms)
                    for old, new in zip(best.get(name, taken), taken, strict=True)
                ]
    print(
        f"{'handler':<22} {'libraries: boto3, pydantic, Logger, Tracer and':<47} "
        f"{'handler ms':>10} {'libraries ms':>12} {'ratio':>6}  beyond its libraries"
    )
    for handler in HANDLERS:
        own, libraries = best[handler.name]
        ratio = own.ms / libraries.ms
        mark = " " if ratio <= TARGET_RATIO else "*"
        print(
            f"{handler.name:<22} {handler.uses or '-':<47} {own.ms:>10.0f} {libraries.ms:>12.0f} "
            f"{ratio:>5.2f}x{mark} {', '.join(beyond(own.modules, libraries.modules))}"
        )
    print(
        f"CPU time of the import, minimum of {repeat} fresh processes each, bytecode cached; * above the target "
        f"of {TARGET_RATIO}x. Python {sys.version.split()[0]} on {os.uname().machine}."
    )


def built_layer() -> Path:
    """The layer as its Makefile builds it for sam build, dependencies cached, opsflow copied afresh."""
    artifacts = BUILDS / f"layer-arm64-{requirements_digest()}"
    if not (artifacts / "python").exists():
        print(f"building the layer with layers/opsflow/Makefile into {artifacts.relative_to(ROOT)} ...")
        BUILDS.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=BUILDS))
        build(["make", "-s", "-C", str(LAYER_SOURCE), "build-OpsflowLayer", f"ARTIFACTS_DIR={staging}"])
        staging.rename(artifacts)
    shutil.rmtree(artifacts / "python" / "opsflow")
    shutil.copytree(
        LAYER_SOURCE / "python" / "opsflow",
        artifacts / "python" / "opsflow",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return artifacts


def zipped_size(layer: Path) -> tuple[int, int]:
    """(zipped, unzipped) bytes of the layer's content, zipped as SAM zips it before uploading."""
    unzipped = 0
    with tempfile.TemporaryFile() as archive:
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
            for path in sorted(layer.rglob("*")):
                if path.is_file():
                    unzipped += path.stat().st_size
                    zipped.write(path, path.relative_to(layer))
        return archive.tell(), unzipped


def report_layer(layer: Path, origin: str) -> None:
    zipped, unzipped = zipped_size(layer)
    mb = 1024 * 1024
    print(
        f"Layer ({origin}): {zipped / mb:.1f} MiB zipped, {unzipped / mb:.1f} MiB unzipped "
        f"(Lambda allows {ZIPPED_QUOTA_MB} MB zipped per direct upload, {UNZIPPED_QUOTA_MB} MB unzipped for "
        "a function and its layers)."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="fresh processes per figure (default 15)")
    parser.add_argument("--layer", type=Path, help="measure this built layer (the directory holding python/)")
    parser.add_argument("--no-layer", action="store_true", help="time the imports only")
    args = parser.parse_args()
    time_imports(args.repeat)
    if args.no_layer:
        return 0
    if args.layer is not None:
        report_layer(args.layer, str(args.layer))
    elif SAM_BUILD.exists():
        report_layer(SAM_BUILD, str(SAM_BUILD.relative_to(ROOT)))
    else:
        report_layer(built_layer(), "built by layers/opsflow/Makefile for arm64")
    return 0


if __name__ == "__main__":
    sys.exit(main())
