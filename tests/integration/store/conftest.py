"""Each store's contract runs against its DynamoDB implementation, on a table built from the template's own
declaration (keys, indexes, time to live), and against its in-memory twin."""

from __future__ import annotations

from pathlib import Path

import boto3

from opsflow_local.runtime import create_table
from opsflow_local.template import Template

ROOT = Path(__file__).resolve().parents[3]


def table_from_template(logical_id: str, name: str | None = None) -> str:
    template = Template.load(ROOT / "template.yaml", "us-east-1")
    name = name or template.physical_name(logical_id)
    create_table(
        boto3.client("dynamodb"), name, template.resolve(template.body["Resources"][logical_id]["Properties"])
    )
    return name
