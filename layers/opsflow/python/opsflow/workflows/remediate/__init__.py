"""Remediate: act on one resource a remediation rule's guard let it act on, and learn whether it helped.

Not registered yet: its state machine (which waits on the instance's state-change and the alarm's OK events
rather than polling) and the template's remediation function come with the change that deploys it."""
