"""`python -m core.engine.cluster_slot --home STORE --store-id S --slot ID`: a training slot on a cluster node.

The cluster pool (`core.engine.cluster`) keeps its slots as long-running Ray
jobs, placed by Ray on nodes with the CPUs (and GPUs) a run asks for. Each
runs the very worker program the local pool runs (`core.engine.worker`:
imports TensorFlow once, trains one run after another, retires) and relays
its protocol through two files in the run store the server shares with every
node: the server appends commands to `.cluster/<ID>.in` (run, stop, pause,
change, and "close"), the worker's events go to `.cluster/<ID>.out` (ready,
started, ended). A warm slot takes its next run at once, as a local worker does.

It first checks that this node sees the server's run store (its identity,
`RunStore.identity`): a node that cannot see it, or sees another one, ends at
once with a line saying so, which the server quotes to the run it meant for
it; nothing trains and writes nowhere. An idle slot exits when the server's
heartbeat (`.cluster/server.alive`, touched every few seconds) is older than
ORPHAN_S: a server that went away for good does not keep the cluster's CPUs.
A slot training a run goes on when the server goes: a restarted server takes
it back. Ray's stop_job (SIGTERM) closes the worker's stdin: a run in progress
checkpoints and ends interrupted, resumable.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from core.engine.protocol import Event, read_event
from core.runs.store import RunStore

POLL_S = 0.1  # how often the inbox is read
ORPHAN_S = 120.0  # an idle slot whose server has not been heard of for this long exits
NO_STORE_EXIT = 3
STORE_LINE = "convlab-store-problem:"  # the line the server looks for in a failed slot's log
HEARTBEAT = "server.alive"
CLOSE = "close"  # the server's command: close the worker's stdin (an idle worker exits)


def inbox_name(slot: str) -> str:
    return f"{slot}.in"


def outbox_name(slot: str) -> str:
    return f"{slot}.out"


def store_problem(store: RunStore, expected: str) -> str:
    """Why this node cannot train into `store` ("" when it can)."""
    host = socket.gethostname()
    if not store.root.is_dir():
        return (f"the node {host} cannot see the run store at {store.root} (no such folder there): every node "
                "must reach the same shared folder at the same path")
    seen = store.identity()
    if seen != expected:
        what = "a folder that is not a ConvLab run store" if not seen else "another run store"
        return (f"the node {host} sees {what} at {store.root}, not the server's: mount the server's shared run "
                "store at that path on every node")
    return ""


def follow(path: Path, stop: threading.Event, from_end: bool = False):
    """Each complete line appended to `path`, as it comes (the file may not exist yet), until `stop`; with
    `from_end`, only the lines appended from now on."""
    try:
        offset = path.stat().st_size if from_end else 0
    except OSError:
        offset = 0
    while not stop.is_set():
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
        except OSError:
            chunk = b""
        complete = chunk[: chunk.rfind(b"\n") + 1]
        offset += len(complete)
        yield from complete.decode(errors="replace").splitlines()
        if not complete:
            stop.wait(POLL_S)


def private_code() -> Path:
    """A copy of the `core` package in a folder of this slot's own, for its worker to run from.

    Ray unpacks a job's code into a folder it manages and may replace or delete that folder while a
    long-lived slot still runs from it (another job with the same code starting on a node that shares
    the folder, its clean-up of unused packages): a worker whose current folder vanished fails at the
    next path it resolves (NumPy's file readers resolve the current folder). The copy is its own, removed
    when the slot ends.
    """
    folder = Path(tempfile.mkdtemp(prefix="convlab-slot-code-"))
    shutil.copytree(Path(__file__).resolve().parents[1], folder / "core",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return folder


class Relay:
    """The worker process, with its stdin fed from the inbox and its stdout written to the outbox."""

    def __init__(self, home: RunStore, slot: str, python: str = sys.executable) -> None:
        self.home, self.inbox, self.outbox = home, home.cluster_file(inbox_name(slot)), home.cluster_file(
            outbox_name(slot))
        self.code = private_code()
        env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
                   PYTHONPATH=str(self.code))
        self.worker = subprocess.Popen([python, "-m", "core.engine.worker"], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True, bufsize=1, env=env, cwd=self.code)
        self.idle = True  # no run in hand (it says "ready" between runs)
        self.stop = threading.Event()
        self._lock = threading.Lock()

    def feed(self) -> None:
        """Inbox lines to the worker's stdin; "close" (or a SIGTERM) closes it."""
        for line in follow(self.inbox, self.stop):
            try:
                if json.loads(line).get("cmd") == CLOSE:
                    self.close()
                    return
            except (ValueError, AttributeError):
                continue
            with self._lock:
                try:
                    self.worker.stdin.write(line + "\n")
                    self.worker.stdin.flush()
                except (OSError, ValueError):
                    return

    def relay(self) -> None:
        """The worker's events to the outbox (one complete line per write)."""
        from core import atomic

        for line in self.worker.stdout:
            message = read_event(line)
            if message is None:
                continue  # a library's chatter on stdout
            kind, _ = message
            self.idle = kind in (Event.READY, Event.ENDED)
            atomic.append_line(self.outbox, line.rstrip("\n"))

    def close(self) -> None:
        with self._lock:
            try:
                self.worker.stdin.close()
            except OSError:
                pass

    def watch_server(self) -> None:
        """Exit when idle and the server has not been heard of for ORPHAN_S."""
        beat = self.home.cluster_file(HEARTBEAT)
        while not self.stop.wait(5.0):
            try:
                age = time.time() - beat.stat().st_mtime
            except OSError:
                age = float("inf")
            if self.idle and age > ORPHAN_S:
                self.close()
                return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.engine.cluster_slot")
    parser.add_argument("--home", required=True, help="the run store holding the cluster's slot files")
    parser.add_argument("--store-id", required=True, help="its identity, as the server sees it")
    parser.add_argument("--slot", required=True, help="this slot's name")
    args = parser.parse_args(argv)
    home = RunStore(args.home)
    problem = store_problem(home, args.store_id)
    if problem:
        print(f"{STORE_LINE} {problem}", file=sys.stderr, flush=True)
        return NO_STORE_EXIT
    relay = Relay(home, args.slot)
    signal.signal(signal.SIGTERM, lambda signum, frame: relay.close())
    for target in (relay.feed, relay.watch_server):
        threading.Thread(target=target, daemon=True).start()
    try:
        relay.relay()
        relay.stop.set()
        return relay.worker.wait()
    finally:
        shutil.rmtree(relay.code, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
