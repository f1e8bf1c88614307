"""Where `opsflow local` tells the client commands its URL: `$OPSFLOW_HOME/local.json` (default
`~/.opsflow/local.json`), written when the local app is ready and removed when it stops."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class LocalEndpoint:
    url: str
    region: str
    pid: int


def opsflow_home() -> Path:
    return Path(os.environ.get("OPSFLOW_HOME") or Path.home() / ".opsflow").expanduser()


def state_file() -> Path:
    return opsflow_home() / "local.json"


def write_local(endpoint: LocalEndpoint) -> Path:
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole then renamed, so a client starting at the same moment never reads half a file.
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(asdict(endpoint), indent=2) + "\n", encoding="utf-8")
    partial.replace(path)
    return path


def read_local() -> LocalEndpoint | None:
    """The running local app, or None: no state file, an unreadable one, or one a crashed server left."""
    try:
        data = json.loads(state_file().read_text(encoding="utf-8"))
        endpoint = LocalEndpoint(url=str(data["url"]), region=str(data["region"]), pid=int(data["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return endpoint if _alive(endpoint.pid) else None


def clear_local(pid: int) -> None:
    """Remove the state file if it is this server's (a second `opsflow local` may have replaced it)."""
    current = _read_pid()
    if current == pid:
        state_file().unlink(missing_ok=True)


def _read_pid() -> int | None:
    try:
        return int(json.loads(state_file().read_text(encoding="utf-8"))["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
