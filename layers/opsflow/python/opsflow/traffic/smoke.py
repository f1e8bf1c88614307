"""A smoke test gate: an HTTP GET of a URL that must answer 2xx, redirects not followed."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opsflow.traffic.gates import SmokeTestFailed

HttpGet = Callable[[str, float], int]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect (to HTTPS, or to the production host) would test something other than green: it counts as
    # an answer that is not 2xx.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def http_status(url: str, timeout: float) -> int:
    """The status of a GET of `url`, redirects not followed; raises OSError when there is no answer."""
    request = urllib.request.Request(url, headers={"User-Agent": "opsflow-smoke-test"})
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


@dataclass(frozen=True)
class UrlSmokeTest:
    url: str
    timeout_seconds: float
    http_get: HttpGet

    def check(self) -> str:
        try:
            status = self.http_get(self.url, self.timeout_seconds)
        except OSError as error:
            raise SmokeTestFailed(f"smoke test GET {self.url} got no answer: {error}") from error
        if not 200 <= status < 300:
            raise SmokeTestFailed(f"smoke test GET {self.url} answered {status}, not 2xx")
        return f"GET {self.url} answered {status}"
