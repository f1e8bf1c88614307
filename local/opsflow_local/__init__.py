"""The embedded local AWS: Opsflow's own template, handlers and state machines deployed on moto in-process.

from opsflow_local import EmbeddedAws
with EmbeddedAws() as aws:
    aws.api.post("/runs", json={...}, principal="arn:aws:iam::123456789012:user/alice")
"""

from opsflow_local.runtime import EmbeddedAws

__all__ = ["EmbeddedAws"]
