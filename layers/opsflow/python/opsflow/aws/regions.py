"""The regions AWS has, as the SDK's endpoint data knows them (every partition's)."""

from __future__ import annotations

from functools import cache

import boto3


@cache
def known_regions() -> frozenset[str]:
    session = boto3.session.Session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("ec2", partition_name=partition)
    )


def check_region(region: str) -> str:
    """The region, or a ValueError that names the nearest known ones."""
    if region in known_regions():
        return region
    prefix = region.rsplit("-", 1)[0]
    near = sorted(r for r in known_regions() if r.startswith(prefix))[:6]
    hint = f" (known: {', '.join(near)})" if near else ""
    raise ValueError(f"{region!r} is not an AWS region{hint}")
