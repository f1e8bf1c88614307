"""Opsflow: operational workflows for AWS, run as Step Functions state machines."""

__version__ = "0.1.0"
