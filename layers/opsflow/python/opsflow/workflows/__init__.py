"""Workflow domain logic: what each step does, independent of Lambda and Step Functions."""
