"""Guarded remediation: rules saying which failure events Opsflow answers with which action, and the
guards (cooldown, circuit breaker, concurrency cap) that keep a remediation from causing an incident."""
