"""Waiting on events: a state machine's `.waitForTaskToken` step records its token under what it awaits
(`awaiting`), and the events AWS sends about that thing resume it (`events`, `resume`). Each wait's timeout
is a reconcile interval after which the state machine checks the resource itself, since most of those
events are best effort."""
