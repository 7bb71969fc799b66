"""The worker protocol: commands and events round-trip through their one-line JSON; anything else is ignored."""

from __future__ import annotations

import json

import pytest

from core.engine.protocol import Command, Event, command, event, read_command, read_event


@pytest.mark.parametrize("kind, fields", [
    (Command.RUN, {"root": "/srv/convlab/runs", "run_id": "20261127-163630-69a147"}),
    (Command.STOP, {}),
    (Command.RUN, {"root": "a folder\nwith a newline", "run_id": "x"}),  # still one line
])
def test_a_command_round_trips_through_its_line(kind, fields):
    line = command(kind, **fields)
    assert line.endswith("\n") and line.count("\n") == 1
    assert read_command(line) == (kind, fields)
    assert read_event(line) is None  # a command is no event


@pytest.mark.parametrize("kind, fields", [
    (Event.READY, {"pid": 4242}),
    (Event.STARTED, {"run_id": "20261127-163630-69a147"}),
    (Event.ENDED, {"run_id": "20261127-163630-69a147", "state": "finished", "retiring": True}),
])
def test_an_event_round_trips_through_its_line(kind, fields):
    line = event(kind, **fields)
    assert line.endswith("\n") and line.count("\n") == 1
    assert read_event(line) == (kind, fields)
    assert read_command(line) is None  # an event is no command


def test_the_wire_format_is_the_documented_one():
    assert json.loads(command(Command.STOP)) == {"cmd": "stop"}
    assert json.loads(command(Command.RUN, root="r", run_id="i")) == {"cmd": "run", "root": "r", "run_id": "i"}
    assert json.loads(event(Event.READY, pid=7)) == {"event": "ready", "pid": 7}
    assert read_command('{"cmd": "run", "run_id": "i", "root": "r"}\n') == (Command.RUN, {"run_id": "i", "root": "r"})
    assert read_event('{"pid": 7, "event": "ready"}') == (Event.READY, {"pid": 7})


@pytest.mark.parametrize("line", [
    "", "\n", "Epoch 1/10\n", "not json at all", "{broken json", "null", "42", '"ready"', "[1, 2]",
    '{"event": "exploded"}', '{"event": null}', '{"event": ["ready"]}', '{"cmd": "run"}', '{"ready": "event"}',
    "2026-11-27 16:36:30 W tensorflow: something a library printed\n",
])
def test_garbage_and_unknown_names_are_ignored(line):
    assert read_event(line) is None


@pytest.mark.parametrize("line", [
    "", "not json", "{}", '{"cmd": "explode"}', '{"cmd": 3}', '{"cmd": {"run": 1}}', '{"event": "ready"}', "[]",
])
def test_garbage_and_unknown_commands_are_ignored(line):
    assert read_command(line) is None
