"""Write the API's OpenAPI document, as `GET /openapi.json` serves it, to `openapi.json` at the
repository root: `python -m opsflow_local.openapi` (or `--check` to fail when the file is stale)."""

from __future__ import annotations

import argparse
import importlib.util
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
API_HANDLER = ROOT / "functions" / "api" / "app.py"
DOCUMENT = ROOT / "openapi.json"


def generate() -> str:
    """The document the API handler generates; importing the handler calls no AWS service."""
    # A module name of its own, so it never shadows the embedded runtime's copy of the handler.
    name = f"opsflow_openapi_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, API_HANDLER)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the API handler from {API_HANDLER}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        document: str = module.openapi_document()
    finally:
        del sys.modules[name]
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if openapi.json is out of date")
    args = parser.parse_args(argv)
    document = generate()
    if args.check:
        if not DOCUMENT.exists() or DOCUMENT.read_text() != document:
            sys.stderr.write(f"{DOCUMENT.name} is out of date: run python -m opsflow_local.openapi\n")
            return 1
        return 0
    DOCUMENT.write_text(document)
    sys.stdout.write(f"wrote {DOCUMENT}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
