"""Where something an event is about lives, as a message says it: console links for the event's region, and
the account and region of anything outside the hub's own."""

from __future__ import annotations

import os


def console(region: str, path: str) -> str:
    return f"https://{region}.console.aws.amazon.com/{path}"


def home_account() -> str:
    return os.environ.get("HUB_ACCOUNT_ID", "")


def elsewhere(account: str | None, region: str | None) -> str:
    """` in 222222222222/eu-west-1` for something outside the hub's account and region, else ``."""
    home, home_region = home_account(), os.environ.get("AWS_REGION", "")
    shown_account = account if account and home and account != home else None
    shown_region = region if region and home_region and (region != home_region or shown_account) else None
    where = "/".join(part for part in (shown_account, shown_region) if part)
    return f" in {where}" if where else ""


def where_facts(account: str | None, region: str | None) -> list[tuple[str, str]]:
    """Account and region, named for anything outside the hub's own account (its console links open in the
    region named, once signed in to that account)."""
    if not account or not home_account() or account == home_account():
        return []
    return [("Account", account), ("Region", region or "?")]


def link_label(label: str, account: str | None) -> str:
    home = home_account()
    return f"{label} (account {account})" if account and home and account != home else label
