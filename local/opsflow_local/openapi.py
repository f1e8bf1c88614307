"""Write the API's OpenAPI document, as `GET /openapi.json` serves it, to `openapi.json` at the
repository root: `python -m opsflow_local.openapi` (or `--check` to fail when the file is stale)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "openapi.json"


def generate() -> str:
    """The document the API generates; building its resolver calls no AWS service."""
    from opsflow.triggers.api.app import openapi_document

    return openapi_document()


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
