"""The worker protocol: JSON lines between the server (`core.engine.process`) and a worker (`core.engine.worker`).

The server writes commands to the worker's stdin; the worker writes events
to its stdout. The message names are defined here once, for both ends. A
line that is not a message of ours (a library printing to stdout) is
ignored, so a chatty library cannot derail the protocol.

    server -> worker   {"cmd": "run", "root": <store>, "run_id": <id>}    train that run (or resume it)
                       {"cmd": "stop"}                                    stop the current run, keeping its weights
                       {"cmd": "pause"}                                   checkpoint the current run and end it paused
                       {"cmd": "change", "kind": <k>, "value": <v>}       change its course (`core.training.controls`)
    worker -> server   {"event": "ready", "pid": <pid>}                   TensorFlow imported, waiting for a run
                       {"event": "started", "run_id": <id>}
                       {"event": "ended", "run_id": <id>, "state": <RunState value>, "retiring": <bool>}

The end of the worker's stdin means the server has gone: the current run
stops, keeps its weights, is marked interrupted, and the worker exits.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any


class Command(str, Enum):
    RUN = "run"
    STOP = "stop"
    PAUSE = "pause"
    CHANGE = "change"


class Event(str, Enum):
    READY = "ready"
    STARTED = "started"
    ENDED = "ended"


def command(kind: Command, /, **fields: Any) -> str:
    """One command as a line for the worker's stdin."""
    return json.dumps({"cmd": kind.value, **fields}) + "\n"


def event(kind: Event, **fields: Any) -> str:
    """One event as a line for the worker's stdout."""
    return json.dumps({"event": kind.value, **fields}) + "\n"


def read_command(line: str) -> tuple[Command, dict[str, Any]] | None:
    """(the command, its fields) from a line of the worker's stdin; None for anything else."""
    return _read(line, "cmd", Command)


def command_of(record: dict[str, Any]) -> tuple[Command, dict[str, Any]] | None:
    """(the command, its fields) from a command already parsed (a line of a run's control.jsonl)."""
    return _read(json.dumps(record), "cmd", Command)


def read_event(line: str) -> tuple[Event, dict[str, Any]] | None:
    """(the event, its fields) from a line of the worker's stdout; None for anything else."""
    return _read(line, "event", Event)


def _read(line: str, key: str, kinds: type[Enum]) -> Any:
    try:
        message = json.loads(line)
        return kinds(message.pop(key)), message
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
