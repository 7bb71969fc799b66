"""Runs on a real Ray cluster of two nodes started on this machine (`tests/ray_cluster.py`): where runs land,
Stop and cancel, a node killed mid-run, a node that cannot see the store, a server restarted while runs train,
a cluster that cannot be reached, Ray's token authentication, the CLI's runs and sweeps."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import replace

import pytest

from core.engine.cluster import slots_of
from core.engine.execute import execute
from core.engine.jobs import JobManager
from core.runs.status import RunState
from core.runs.store import RunStore
from tests.conftest import training, wait_for
from tests.core.engine.conftest import LONG, PAUSABLE, same_training, spec
from tests.ray_cluster import LocalRayCluster, can_hide_folders

SIX = replace(PAUSABLE, epochs=6)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    started = LocalRayCluster(tmp_path_factory.mktemp("ray")).start()
    before = {key: os.environ.get(key) for key in started.env}
    os.environ.update(started.env)  # this process is the server: its client needs the token
    try:
        yield started
    finally:
        started.stop()
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture()
def jobs(cluster, tmp_path):
    manager = JobManager(cluster=cluster.address, cluster_home=RunStore(tmp_path))
    yield manager
    for run_id in manager.running() + manager.queued():
        manager.stop(run_id)
    manager.wait_idle(timeout=300)
    manager.shutdown()


@pytest.fixture(scope="module")
def six_epochs_here(tmp_path_factory, bars_file):
    """SIX trained in this process, in one go: what a run moved between nodes must end with."""
    store = RunStore(tmp_path_factory.mktemp("reference"))
    run_id = store.create(spec(bars_file, SIX))
    assert execute(store, run_id) is RunState.FINISHED
    return store, run_id


def node_names(cluster, store, run_id) -> list[str]:
    return [cluster.node_of(placed["node"]) for placed in store.placement(run_id)]


def test_slots_follow_each_nodes_cpus_and_gpus():
    nodes = [{"CPU": 4.0}, {"CPU": 2.0, "GPU": 1.0}, {"CPU": 1.0}]
    assert slots_of(nodes, cpus_per_run=2, gpus_per_run=0) == 3
    assert slots_of(nodes, cpus_per_run=1, gpus_per_run=1) == 1  # only the GPU node takes a run asking for one


def test_runs_land_on_both_nodes_and_train_as_they_do_here(cluster, jobs, tmp_path, bars_file, never_paused):
    store = RunStore(tmp_path)
    assert jobs.describe() == f"the Ray cluster at {cluster.address}: 2 nodes, 2 slots (1 CPU a run)"
    runs = [jobs.submit(store, spec(bars_file, PAUSABLE)) for _ in range(2)]
    assert jobs.wait_idle(timeout=600)
    assert sorted(name for run_id in runs for name in node_names(cluster, store, run_id)) == ["head", "node2"]
    for run_id in runs:
        assert store.status(run_id).state is RunState.FINISHED and store.has_model(run_id)
        assert same_training(store, run_id, *never_paused)  # a cluster node trains as this machine does


def test_every_free_slot_is_kept_warm_so_a_class_does_not_wait_for_each_slot_to_start(cluster, jobs, tmp_path,
                                                                                          bars_file):
    """Also: the store the runs go to, seen for the first time after the slots exist (a browser's workspace),
    does not make the pool follow its own slots twice (each run was placed twice)."""
    jobs.warm_up()
    wait_for(lambda: jobs.ready_spares() == 2, timeout=300, what="both slots ready before anyone pressed Start")
    store = RunStore(tmp_path)
    runs = [jobs.submit(store, spec(bars_file, PAUSABLE)) for _ in range(2)]
    assert jobs.wait_idle(timeout=600)
    assert sorted(name for run_id in runs for name in node_names(cluster, store, run_id)) == ["head", "node2"]
    assert all(store.status(run_id).state is RunState.FINISHED for run_id in runs)


def test_stop_keeps_the_weights_and_a_queued_run_is_cancelled(cluster, jobs, tmp_path, bars_file):
    store = RunStore(tmp_path)
    first, second, third = (jobs.submit(store, spec(bars_file, LONG)) for _ in range(3))
    assert jobs.position(third) == 1  # two slots: the third waits in the server's queue
    assert jobs.stop(third) and store.status(third).state is RunState.CANCELLED
    wait_for(lambda: training(store, first), timeout=300, what="the first run to train on its node")
    assert jobs.stop(first)
    wait_for(lambda: not store.status(first).state.is_active, timeout=60, what="the stop")
    status = store.status(first)
    assert status.state is RunState.STOPPED and store.has_model(first) and store.test_metrics(first) is not None
    assert re.match(r"Stopped by the user (in|at the end of) epoch \d+/200", status.message)  # (a stop may land on an epoch's end)
    jobs.stop(second)


def test_a_restarted_server_takes_back_the_runs_training_on_the_cluster(cluster, tmp_path, bars_file):
    store = RunStore(tmp_path)
    first = JobManager(cluster=cluster.address, cluster_home=store)
    run_id = first.submit(store, spec(bars_file, LONG))
    wait_for(lambda: training(store, run_id), timeout=300, what="the run to train on its node")
    first.shutdown()  # the server goes; the run goes on training on its node
    assert store.status(run_id).state is RunState.RUNNING
    again = JobManager(cluster=cluster.address, cluster_home=store)
    try:
        again.adopt(store)
        assert again.running() == [run_id]
        assert again.change(run_id, "epochs", 1)  # the new server controls it
        assert again.wait_idle(timeout=300)
    finally:
        again.shutdown()
    # it ends at the end of the epoch it was in when told (its first, or a later one on a quick node), not at 200
    assert store.status(run_id).state is RunState.FINISHED and len(store.epochs(run_id)) < LONG.epochs
    assert [(e["kind"], e["value"]) for e in store.events(run_id)] == [("epochs", len(store.epochs(run_id)))]


@pytest.mark.skipif(not can_hide_folders(), reason="needs a mount namespace (unshare, as root) to hide a folder")
def test_a_node_that_cannot_see_the_store_fails_the_run_at_once(cluster, jobs, tmp_path, bars_file):
    store = RunStore(tmp_path)  # (the pool's home: its slots' files are here too)
    busy = [jobs.submit(store, spec(bars_file, LONG)) for _ in range(2)]  # the two nodes that see it are busy
    for run_id in busy:
        wait_for(lambda run_id=run_id: training(store, run_id), timeout=300, what="the busy runs")
    blind = cluster.add_node(hide=store.root)  # a third node, where the store's folder is an empty one
    try:
        cluster.wait_for_nodes(3)
        wait_for(lambda: jobs.max_concurrent == 3, timeout=60, what="the third slot")
        run_id = jobs.submit(store, spec(bars_file, LONG))
        wait_for(lambda: not store.status(run_id).state.is_active, timeout=300, what="the run to fail")
        status = store.status(run_id)
        assert status.state is RunState.FAILED and not store.has_model(run_id)
        assert status.message.startswith("The training process could not start (the node ")
        assert f"sees a folder that is not a ConvLab run store at {store.root}" in status.message
    finally:
        for run_id in busy:
            jobs.stop(run_id)
        jobs.wait_idle(timeout=300)
        cluster.kill(blind)
        cluster.wait_for_nodes(2)


def test_a_node_killed_mid_run_leaves_it_resumed_on_the_other(cluster, jobs, tmp_path, bars_file, six_epochs_here):
    store = RunStore(tmp_path)
    runs = [jobs.submit(store, spec(bars_file, SIX)) for _ in range(2)]
    wait_for(lambda: all(store.has_checkpoint(r, "last") and store.placement(r) for r in runs), timeout=300,
             what="both runs past their first epoch")
    placed = {r: node_names(cluster, store, r) for r in runs}
    assert sorted(placed.values()) == [["head"], ["node2"]], placed
    (moved,) = [r for r in runs if placed[r] == ["node2"]]
    cluster.kill(next(node for node in cluster.nodes if node.name == "node2"))
    try:
        wait_for(lambda: len(store.placement(moved)) == 2, timeout=300, what="the run to move to the head")
        assert jobs.wait_idle(timeout=600)
        assert node_names(cluster, store, moved) == ["node2", "head"]
        assert store.status(moved).state is RunState.FINISHED
        assert [row["epoch"] for row in store.epochs(moved)] == [1, 2, 3, 4, 5, 6]  # nothing twice, nothing lost
        assert [e["kind"] for e in store.events(moved)] == ["node_lost", "resumed"]
        assert same_training(store, moved, *six_epochs_here)
    finally:
        cluster.add_node()
        cluster.wait_for_nodes(2)


def test_the_cli_trains_on_the_cluster_with_ray(cluster, tmp_path, bars_file, capsys):
    from core.cli import main

    store = RunStore(tmp_path / "runs")
    code = main(["--dataset", str(bars_file), "--arch", "lab", "--train", "lab", "--epochs", "2", "--runs",
                 str(store.root), "--ray", cluster.address])  # (the run store is the cluster's home)
    out = capsys.readouterr().out
    assert code == 0, out
    (run_id,) = store.run_ids()
    assert f"on the Ray cluster at {cluster.address}: 2 nodes, 2 slots" in out
    assert "epoch 1/2: loss" in out and "epoch 2/2: loss" in out and "[4/4] test accuracy:" in out
    assert len(node_names(cluster, store, run_id)) == 1


def test_a_sweep_trains_its_trials_side_by_side_on_the_clusters_nodes(cluster, tmp_path, bars_file, capsys):
    from core.sweeps.cli import main
    from core.sweeps.results import read_sweep
    from core.sweeps.store import SweepStore

    store = RunStore(tmp_path / "runs")
    code = main(["--dataset", str(bars_file), "--arch", "lab", "--train", "lab", "--epochs", "2", "--runs",
                 str(store.root), "--vary", "learning_rate=0.005,0.01", "--strategy", "grid", "--no-prune",
                 "--ray", cluster.address])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"trained on the Ray cluster at {cluster.address}: 2 nodes, 2 slots" in out
    (sweep_id,) = SweepStore(store).ids()
    view = read_sweep(SweepStore(store), sweep_id)
    assert [t.state for t in view.trials] == ["finished", "finished"] and len(store.run_ids()) == 2
    # two slots, two trials: one on each node
    assert sorted(name for run_id in store.run_ids() for name in node_names(cluster, store, run_id)) == ["head", "node2"]


def test_a_submission_without_the_token_is_refused(cluster):
    script = textwrap.dedent(f"""
        from ray.job_submission import JobSubmissionClient
        try:
            JobSubmissionClient({cluster.address!r}).submit_job(entrypoint="echo anyone can run code here")
        except Exception as error:
            print(type(error).__name__, error)
        else:
            print("ACCEPTED")
    """)
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_AUTH")}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.startswith("AuthenticationError Authentication required: Unauthorized: Missing authentication"), (
        done.stdout + done.stderr)


def test_a_cluster_that_cannot_be_reached_keeps_the_queue_waiting_with_a_message(tmp_path, bars_file):
    from tests.ray_cluster import free_port

    jobs = JobManager(cluster=f"http://127.0.0.1:{free_port()}", cluster_home=RunStore(tmp_path))
    try:
        store = RunStore(tmp_path)
        run_id = jobs.submit(store, spec(bars_file))
        assert jobs.position(run_id) == 1 and store.status(run_id).state is RunState.QUEUED
        assert "cannot be reached since" in jobs.describe() and "runs wait in the queue until it is back" in \
            jobs.describe()
    finally:
        jobs.shutdown()
    assert store.status(run_id).state is RunState.CANCELLED  # (the server stopped: its queue is cancelled)
