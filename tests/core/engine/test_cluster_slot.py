"""A training slot on a cluster node: the store it must see, and the files it relays the worker's protocol through."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from core.engine.cluster_slot import NO_STORE_EXIT, STORE_LINE, Relay, follow, inbox_name, main, outbox_name, store_problem
from core.runs.store import RunStore
from tests.conftest import wait_for


def test_a_node_must_see_the_servers_store(tmp_path, capsys):
    store = RunStore(tmp_path / "runs")
    identity = store.identity(create=True)
    assert store_problem(store, identity) == ""
    assert "cannot see the run store" in store_problem(RunStore(tmp_path / "elsewhere"), identity)
    other = RunStore(tmp_path / "other")
    other.identity(create=True)
    assert "sees another run store at" in store_problem(other, identity)
    (tmp_path / "plain").mkdir()
    assert "a folder that is not a ConvLab run store" in store_problem(RunStore(tmp_path / "plain"), identity)
    code = main(["--home", str(tmp_path / "plain"), "--store-id", identity, "--slot", "s1"])
    assert code == NO_STORE_EXIT and capsys.readouterr().err.startswith(f"{STORE_LINE} the node ")


def test_follow_reads_each_line_once_as_it_is_appended(tmp_path):
    path, stop, seen = tmp_path / "box", threading.Event(), []
    path.write_text('{"a": 1}\n')
    reader = threading.Thread(target=lambda: seen.extend(line for line in follow(path, stop)))
    reader.start()
    with open(path, "a") as box:
        box.write('{"b": 2}\n{"c"')  # the last line is not complete yet
    wait_for(lambda: len(seen) == 2, timeout=10, what="two lines")
    with open(path, "a") as box:
        box.write(": 3}\n")
    wait_for(lambda: len(seen) == 3, timeout=10, what="the completed line")
    stop.set()
    reader.join()
    assert [json.loads(line) for line in seen] == [{"a": 1}, {"b": 2}, {"c": 3}]


def test_the_relay_runs_the_worker_program_through_its_inbox_and_outbox(tmp_path):
    """The worker imports TensorFlow, says it is ready in the outbox, and exits when the inbox says close."""
    home = RunStore(tmp_path)
    relay = Relay(home, "s1", python=sys.executable)
    # it runs from a copy of its own, whatever happens to the folder Ray unpacked the job's code into
    assert Path(f"/proc/{relay.worker.pid}/cwd").resolve() == relay.code.resolve()
    assert (relay.code / "core" / "engine" / "worker.py").is_file()
    feeding = threading.Thread(target=relay.feed)
    feeding.start()
    relaying = threading.Thread(target=relay.relay)
    relaying.start()
    outbox = home.cluster_file(outbox_name("s1"))
    wait_for(lambda: outbox.exists() and '"ready"' in outbox.read_text(), timeout=180, what="the worker's ready")
    with open(home.cluster_file(inbox_name("s1")), "a") as inbox:
        inbox.write('{"cmd": "close"}\n')
    assert relay.worker.wait(timeout=120) == 0
    relaying.join()
    relay.stop.set()
    feeding.join()
