"""Runs on a Ray cluster: training slots kept warm on the cluster's nodes, each a Ray job.

Chosen by `CONVLAB_RAY_ADDRESS` (the head's dashboard address, http://head:8265);
without it, runs execute on the local pool (`core.engine.local`). Why Ray
Jobs: the server talks to the cluster over HTTP only (`JobSubmissionClient`,
never `ray.init()` in the Streamlit process, which would take over its
SIGTERM handler); the cluster lists its jobs, so a restarted server finds the
slots still training and takes them back; and `entrypoint_num_cpus` /
`entrypoint_num_gpus` have Ray place each slot on a node that has them. One
Keras 3 model cannot train on several workers at once on TensorFlow
(keras-team/keras#20585): the cluster runs many runs at once, one per slot.

`ClusterPool` is the local pool with its worker processes replaced by
`ClusterSlot`s: a slot is a long-running Ray job (`core.engine.cluster_slot`)
that runs the very worker program of the local pool and relays its protocol
through files in the shared run store. So the queue, positions, cancel, the
"Starting." state, Stop, Pause and changes, spares kept warm (a slot that has
imported TensorFlow takes the next run at once) and retiring are the local
pool's. The slots are Σ over live nodes of CPUs // CPUS_PER_RUN (and GPUs).
A slot whose node goes away mid-run leaves its run interrupted, and the pool
resumes it from its last checkpoint on another slot (AUTO_RESUMES times at
most); a head that cannot be reached makes no slots, so the queue waits with
a message and loses nothing; a server that stops leaves its training slots
training, and the next server takes them back (`reattach`).
"""

from __future__ import annotations

import json
import math
import os
import secrets
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from core.engine.cluster_slot import CLOSE, HEARTBEAT, STORE_LINE, follow, inbox_name, outbox_name
from core.engine.local import LocalPool
from core.engine.process import WorkerEnd
from core.engine.protocol import Command, Event, command, read_event
from core.engine.queue import Job
from core.runs.status import Owner, RunState
from core.runs.store import RunStore
from core.settings import int_setting

RAY_ADDRESS_ENV = "CONVLAB_RAY_ADDRESS"
CPUS_ENV, GPUS_ENV = "CONVLAB_RAY_CPUS_PER_RUN", "CONVLAB_RAY_GPUS_PER_RUN"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
EXCLUDES = ["/runs/", "/.git/", "/bench/out/", "/tests/", "**/__pycache__/", "*.pyc", ".hypothesis/", ".ruff_cache/",
            "node_modules/", "*.keras", "*.ipynb"]
POLL_S = 0.5  # how often a slot's job is asked about
NODES_EVERY_S = 5.0  # how often the cluster's nodes (the slots) are asked about, and the heartbeat touched
AUTO_RESUMES = 2  # a run whose node went away is resumed elsewhere this many times at most
SPARE_BACKOFF_S = 60.0  # after a spare slot failed to start, the next spare waits this long


def cluster_address() -> str:
    """CONVLAB_RAY_ADDRESS, or "" (runs execute on this machine)."""
    return os.environ.get(RAY_ADDRESS_ENV, "").strip()


def slots_of(nodes: list[dict[str, float]], cpus_per_run: float, gpus_per_run: float) -> int:
    """How many runs fit at once on nodes with these total resources, each run on one node."""
    total = 0
    for resources in nodes:
        fits = math.floor(resources.get("CPU", 0.0) / cpus_per_run) if cpus_per_run > 0 else 1_000
        if gpus_per_run > 0:
            fits = min(fits, math.floor(resources.get("GPU", 0.0) / gpus_per_run))
        total += max(0, fits)
    return total


class Cluster:
    """The server's side of one Ray cluster: its client (HTTP), its live nodes, and the slot jobs' files."""

    def __init__(self, address: str, home: RunStore, cpus_per_run: float, gpus_per_run: float) -> None:
        import logging

        from ray.job_submission import JobSubmissionClient

        logging.getLogger("ray").setLevel(logging.WARNING)  # not a line per file Ray packages, in the server's log
        self.address, self.home = address, home
        self.cpus_per_run, self.gpus_per_run = cpus_per_run, gpus_per_run
        self.identity = home.identity(create=True)
        self._client_class = JobSubmissionClient
        self._client: Any = None
        self.nodes: list[dict[str, Any]] = []
        self.slots = 0
        self.unreachable_since: float | None = None
        self.problem = ""

    def call(self, request: Callable[[Any], Any]) -> Any:
        """`request(client)`; ConnectionError when the head cannot be reached."""
        try:
            if self._client is None:
                self._client = self._client_class(self.address)
            return request(self._client)
        except (ConnectionError, OSError) as error:
            self._client = None
            raise ConnectionError(str(error)) from error
        except RuntimeError as error:
            if "connect" in str(error).lower():
                self._client = None
                raise ConnectionError(str(error)) from error
            raise

    def quietly(self, request: Callable[[Any], Any]) -> Any:
        try:
            return self.call(request)
        except Exception:  # noqa: BLE001 - a best effort (a stop, a log to quote)
            return None

    def refresh(self) -> None:
        """Ask the head for its live nodes (the slots follow); touch the server's heartbeat for the slots."""
        from ray.util.state import list_nodes

        try:
            self.home.cluster_file(HEARTBEAT).touch()
        except OSError:
            pass
        try:
            nodes = list_nodes(address=self.address, filters=[("state", "=", "ALIVE")], raise_on_missing_output=False)
        except Exception as error:  # noqa: BLE001 - any failure to reach the head: no slots, the queue waits
            self.nodes, self.slots = [], 0
            self.unreachable_since = self.unreachable_since or time.time()
            self.problem = _short(str(error))
            return
        self.nodes = [{"node_id": n.node_id, "node_ip": n.node_ip, "is_head_node": n.is_head_node,
                       "resources": dict(n.resources_total or {})} for n in nodes]
        self.slots = slots_of([n["resources"] for n in self.nodes], self.cpus_per_run, self.gpus_per_run)
        self.unreachable_since, self.problem = None, ""

    def describe(self) -> str:
        if self.unreachable_since is not None:
            since = time.strftime("%H:%M:%S", time.localtime(self.unreachable_since))
            return (f"the Ray cluster at {self.address}, which cannot be reached since {since} ({self.problem}): "
                    "runs wait in the queue until it is back")
        gpu = f", {self.gpus_per_run:g} GPU" if self.gpus_per_run else ""
        count = len(self.nodes)
        return (f"the Ray cluster at {self.address}: {count} node{'s' if count != 1 else ''}, "
                f"{self.slots} slot{'s' if self.slots != 1 else ''} ({self.cpus_per_run:g} CPU{gpu} a run)")

    def node(self, node_id: str) -> dict[str, Any]:
        return next((node for node in self.nodes if node["node_id"] == node_id), {"node_id": node_id})

    def submit_slot(self, slot: str) -> str:
        """Start a slot job on a node with room for a run; returns its submission id."""
        submission_id = f"convlab-slot-{slot}"
        entrypoint = (f"python -m core.engine.cluster_slot --home {_quote(self.home.root.resolve())} "
                      f"--store-id {self.identity} --slot {slot}")
        self.call(lambda client: client.submit_job(
            entrypoint=entrypoint, submission_id=submission_id,
            entrypoint_num_cpus=self.cpus_per_run, entrypoint_num_gpus=self.gpus_per_run or None,
            runtime_env={"working_dir": str(PROJECT_ROOT), "excludes": EXCLUDES,
                         "env_vars": {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}},
            metadata={"convlab_slot": slot, "convlab_store": self.identity}))
        return submission_id


class ClusterSlot(WorkerEnd):
    """A training slot on the cluster (a Ray job running the worker program), as the pool sees a worker process:
    `ready` once TensorFlow is imported, `send` commands, `run_id` it trains, `alive`, `close`, `kill`."""

    def __init__(self, on_run_ended: Callable[["ClusterSlot"], None], on_exit: Callable[["ClusterSlot"], None],
                 on_started: Callable[["ClusterSlot", str], None], cluster: Cluster, attach: str | None = None,
                 name: str | None = None) -> None:
        self.cluster = cluster
        self.slot = attach or name or secrets.token_hex(6)
        self.inbox = cluster.home.cluster_file(inbox_name(self.slot))
        self.outbox = cluster.home.cluster_file(outbox_name(self.slot))
        self._init_events(on_run_ended, on_exit)
        self.node_id = ""
        self.pid = None  # (no process of this machine)
        self._on_started = on_started
        self._exited = threading.Event()
        self._message = ""
        self._attached = attach is not None
        self.submission_id = f"convlab-slot-{self.slot}" if attach else cluster.submit_slot(self.slot)
        threading.Thread(target=self._read_outbox, name=f"convlab-slot-{self.slot}", daemon=True).start()
        threading.Thread(target=self._watch_job, daemon=True).start()

    def alive(self) -> bool:
        return not self._exited.is_set()

    def wait(self, timeout: float) -> bool:
        return self._exited.wait(timeout)

    def send(self, kind: Command | str, /, **fields: object) -> bool:
        if not self.alive():
            return False
        from core import atomic

        name = kind.value if isinstance(kind, Command) else kind
        atomic.append_line(self.inbox, json.dumps({"cmd": name, **fields}) if name == CLOSE else
                           command(Command(name), **fields).rstrip("\n"))
        return True

    def close(self) -> None:
        """An idle slot exits; one training a run interrupts it (as a worker whose stdin closes)."""
        self.send(CLOSE)

    def kill(self) -> None:
        threading.Thread(target=self.cluster.quietly, args=(lambda c: c.stop_job(self.submission_id),),
                         daemon=True).start()

    def exit_reason(self) -> str:
        if self.failure:
            return self.failure
        logs = self.cluster.quietly(lambda client: client.get_job_logs(self.submission_id)) or ""
        for line in logs.splitlines():
            if STORE_LINE in line:
                return line.split(STORE_LINE, 1)[1].strip()
        return self._message or "its job ended"

    def _read_outbox(self) -> None:
        # a slot taken back by a restarted server: its past is read by `reattach`, only what comes next here
        for line in follow(self.outbox, self._exited, from_end=self._attached):
            self._heard(line)

    def _started(self, run_id: str) -> None:
        self.run_id = run_id or self.run_id or ""
        self._on_started(self, self.run_id)

    def _watch_job(self) -> None:
        while not self._exited.is_set():
            try:
                info = self.cluster.call(lambda client: client.get_job_info(self.submission_id))
            except ConnectionError:
                time.sleep(POLL_S * 4)  # the head is away: the slot's fate is asked again when it is back
                continue
            except RuntimeError:  # unknown to this cluster (a new head): the slot is gone
                info = None
            status = "GONE" if info is None else str(info.status)
            if status in ("PENDING", "RUNNING"):
                if info.driver_node_id and not self.node_id:
                    self.node_id = info.driver_node_id
                time.sleep(POLL_S)
                continue
            self._message = _short(info.message) if info is not None and info.message else status.lower()
            time.sleep(2 * POLL_S)  # (the slot's last events, written before it ended, are read first)
            self._exited.set()
            self._on_exit(self)


class ClusterPool(LocalPool):
    """The local pool's scheduling, over `ClusterSlot`s on the Ray cluster at `address`."""

    def __init__(self, cond: threading.Condition, ended, runs_waiting: Callable[[], bool],
                 requeue: Callable[[Job], None], *, address: str, home: RunStore, cpus_per_run: float | None = None,
                 gpus_per_run: float | None = None, keep_spare: bool = True, idle_retire_s: float = 120.0,
                 worker_start_timeout_s: float = 600.0) -> None:
        cpus = float(cpus_per_run if cpus_per_run is not None else int_setting(CPUS_ENV, 1, 0, 1024))
        gpus = float(gpus_per_run if gpus_per_run is not None else int_setting(GPUS_ENV, 0, 0, 64))
        self.cluster = Cluster(address, home, cpus, gpus)
        self.cluster.refresh()
        super().__init__(cond, ended, runs_waiting, slots=self.cluster.slots, keep_spare=keep_spare,
                         worker_start_timeout_s=worker_start_timeout_s, idle_retire_s=idle_retire_s)
        self._requeue = requeue
        self._resumes: dict[str, int] = {}
        self._spares_from = 0.0  # (monotonic) no spare slot before this: the last one died before it was ready
        # every slot this pool follows, made or taken back: `reattach` runs for each store seen for the first time (a
        # browser's workspace too), and must not follow one of them twice (each event would count twice)
        self._own_slots: set[str] = set()
        threading.Thread(target=self._follow_cluster, name="convlab-cluster", daemon=True).start()

    def describe(self) -> str:
        return self.cluster.describe()

    def shutdown(self) -> None:
        """The server stops: idle slots go, slots training a run go on (the next server takes them back)."""
        with self._cond:
            self._closed = True
            spares, self._spares = self._spares, []
        for slot in spares:
            slot.close()

    def reattach(self, store: RunStore) -> list[Job]:
        """The slots still on the cluster (a restarted server): ready ones become spares, training ones' runs come
        back as jobs for the manager. Only slots of this server's home store, training runs of `store`."""
        try:
            listed = self.cluster.call(lambda client: client.list_jobs())
        except ConnectionError:
            return []
        jobs: list[Job] = []
        for info in listed:
            meta = info.metadata or {}
            if meta.get("convlab_store") != self.cluster.identity or str(info.status) not in ("PENDING", "RUNNING"):
                continue
            name = meta.get("convlab_slot", "")
            if name in self._own_slots:  # (this pool's own: a store seen for the first time, not a restart)
                continue
            self._own_slots.add(name)
            training, ready = _state_now(self.cluster.home.cluster_file(outbox_name(name)))
            slot = ClusterSlot(self._run_ended, self._worker_exited, self._slot_started, self.cluster, attach=name)
            with self._cond:
                if training and store.exists(training):
                    slot.run_id = training
                    job = Job(training, store, None, sent=True, handle=slot)
                    self._busy[training] = job
                    jobs.append(job)
                elif not training:
                    if ready:
                        slot.ready.set()
                    self._spares.append(slot)
        return jobs

    # --- the pool's hooks ---
    def _new_worker(self) -> ClusterSlot | None:
        name = secrets.token_hex(6)
        self._own_slots.add(name)  # (before its job exists: a store adopted meanwhile must not take it for a stray)
        try:
            return ClusterSlot(self._run_ended, self._worker_exited, self._slot_started, self.cluster, name=name)
        except Exception:  # noqa: BLE001 - the cluster refused a slot (away, full): the run waits
            return None

    def _start(self, job: Job) -> None:
        if self.cluster.slots == 0 or self.cluster.unreachable_since is not None:
            with self._cond:
                self._busy.pop(job.run_id, None)
            self._requeue(job)  # the cluster is away: the run waits for it, first in line
            return
        super()._start(job)

    def _spares_kept(self) -> int:
        """Every free slot is kept warm, not one as on the server: a slot's TensorFlow lives on a node of the
        cluster, which is there to train, and a class pressing Start at once would otherwise wait for each next
        slot's start (a Ray job, its code unpacked, TensorFlow imported: several seconds each)."""
        return self.slots

    def _spare_wanted(self) -> bool:
        return time.monotonic() >= self._spares_from and super()._spare_wanted()

    def _worker_exited(self, worker) -> None:
        if not worker.ready.is_set() and worker.run_id is None:  # a spare that never got ready (a node that
            self._spares_from = time.monotonic() + SPARE_BACKOFF_S  # cannot see the store): not again at once
        super()._worker_exited(worker)

    def _slot_started(self, slot: ClusterSlot, run_id: str) -> None:
        """A slot began a run: say on which node, in the run's record."""
        with self._cond:
            job = self._busy.get(run_id)
        if job is None:
            return
        node = self.cluster.node(slot.node_id)
        job.store.add_placement(run_id, {"node": slot.node_id, "ip": node.get("node_ip", ""),
                                         "head": bool(node.get("is_head_node")), "slot": slot.slot,
                                         "from_step": job.store.status(run_id).progress.step_done,
                                         "time": time.time()})

    def _lost(self, job: Job, status, worker) -> None:
        """Its node went away mid-run: resume it from its last checkpoint on another slot."""
        p = status.progress
        where = f" in epoch {p.epoch}/{p.epochs}" if p.epoch else ""
        resumes = self._resumes.get(job.run_id, 0)
        if resumes >= AUTO_RESUMES or job.stop_requested:
            self._end(job, RunState.INTERRUPTED, f"Its node went away{where} ({worker.exit_reason()}); Resume goes "
                                                 "on from its last checkpoint.")
            return
        self._resumes[job.run_id] = resumes + 1
        job.store.write_status(job.run_id, replace(
            status, state=RunState.QUEUED, heartbeat=time.time(), ended=None, owner=Owner.this_process(),
            message=f"Its node went away{where} ({worker.exit_reason()}): resuming from its last checkpoint on "
                    "another node."))
        # (at its last epoch's end: what came after it is dropped when it resumes from its checkpoint)
        job.store.append_event(job.run_id, {"kind": "node_lost", "value": None, "by": "",
                                            "step": max(0, p.epoch - 1) * p.batches_per_epoch,
                                            "epoch": max(1, p.epoch - 1), "batch": 0,
                                            "text": _short(worker.exit_reason())})
        with self._cond:
            self._busy.pop(job.run_id, None)
        self._requeue(replace(job, sent=False, handle=None, stop_requested=False, orphaned_at=None))
        self._spawn_spare()

    def _follow_cluster(self) -> None:
        while not self._closed:
            time.sleep(NODES_EVERY_S)
            self.cluster.refresh()
            with self._cond:
                self.slots = self.cluster.slots
                self._cond.notify_all()  # the dispatcher may start more runs
            self._spawn_spare()


def _state_now(outbox: Path) -> tuple[str, bool]:
    """From a slot's outbox: (the run it trains now, "" when none; whether it said it is ready since)."""
    run, ready = "", False
    try:
        lines = outbox.read_text().splitlines()
    except OSError:
        return "", False
    for line in lines:
        message = read_event(line)
        if message is None:
            continue
        kind, fields = message
        if kind is Event.STARTED:
            run, ready = str(fields.get("run_id") or ""), False
        elif kind is Event.ENDED:
            run, ready = "", False
        elif kind is Event.READY:
            ready = True
    return run, ready


def _quote(path: Path) -> str:
    import shlex

    return shlex.quote(str(path))


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
