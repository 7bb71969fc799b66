"""The queue of runs waiting for a training slot: positions, runs still wanted, orphans and their grace period."""

from __future__ import annotations

import pytest

from core.engine.queue import Job, RunQueue
from core.runs.store import RunStore


@pytest.fixture()
def queue(tmp_path) -> RunQueue:
    """a, b and c queued in that order: a by the session x, b and c by the session y (each its own share)."""
    store = RunStore(tmp_path)
    queue = RunQueue()
    for run_id, owner in (("a", "x"), ("b", "y"), ("c", "y")):
        queue.add(Job(run_id, store, owner, share=owner))
    return queue


def test_positions_follow_the_order_runs_were_queued_in(queue):
    assert len(queue) == 3 and queue.run_ids() == ["a", "b", "c"]
    assert [queue.position(run_id) for run_id in ("a", "b", "c", "z")] == [1, 2, 3, None]
    assert queue.remove("b").run_id == "b" and queue.remove("b") is None
    assert [queue.position(run_id) for run_id in ("a", "c")] == [1, 2]
    assert queue.find("c").owner == "y" and queue.find("b") is None


def test_take_next_skips_orphans_and_takes_runs_out_of_the_queue(queue):
    queue.orphan("x", now=10.0)  # the session of a has ended
    assert queue.any_wanted()
    taken = queue.take_next()
    assert taken.run_id == "b" and queue.run_ids() == ["c", "a"]  # (an orphan is listed after the wanted runs)
    queue.orphan("y", now=11.0)
    assert not queue.any_wanted() and queue.take_next() is None
    assert queue.run_ids() == ["a", "c"]  # orphans wait for their grace period, not taken
    queue.hold("x")  # x is back (a reconnect): its runs are wanted again
    assert queue.find("a").orphaned_at is None and queue.take_next().run_id == "a"
    assert queue.find("c").orphaned_at == 11.0


def test_a_claimed_run_is_wanted_again_by_the_session_that_claims_it(queue):
    queue.orphan("y", now=5.0)
    assert queue.claim("c", "y-after-reload")
    job = queue.find("c")
    assert (job.owner, job.orphaned_at) == ("y-after-reload", None)
    assert queue.find("b").orphaned_at == 5.0  # only the claimed run
    assert not queue.claim("z", "y")
    queue.orphan("y", now=6.0)  # the old session's end no longer touches the claimed run
    assert queue.find("c").orphaned_at is None


def test_take_expired_takes_the_orphans_past_their_grace_period(queue):
    queue.orphan("x", now=100.0)
    queue.orphan("y", now=105.0)
    assert queue.take_expired(now=105.0, grace_s=5.0) == []  # exactly the grace period: not yet
    expired = queue.take_expired(now=110.0, grace_s=7.0)
    assert [job.run_id for job in expired] == ["a"] and queue.run_ids() == ["b", "c"]
    assert [job.run_id for job in queue.take_expired(now=112.5, grace_s=7.0)] == ["b", "c"]
    assert len(queue) == 0


def test_take_all_empties_the_queue(queue):
    assert [job.run_id for job in queue.take_all()] == ["a", "b", "c"]
    assert len(queue) == 0 and queue.take_next() is None and not queue.any_wanted()


def test_shares_take_turns_so_a_sweep_cannot_starve_the_others(tmp_path):
    """The sweep's maker queued 5 trials, then two other students one run each: the others go between trials."""
    store, queue = RunStore(tmp_path), RunQueue()
    for number in range(5):
        queue.add(Job(f"t{number}", store, None, share="sweeper"))
    queue.add(Job("alice", store, "a", share="alice"))
    queue.add(Job("bob", store, "b", share="bob"))
    assert queue.run_ids() == ["t0", "alice", "bob", "t1", "t2", "t3", "t4"]  # a share never served goes first
    assert [queue.position(run_id) for run_id in ("t0", "alice", "bob", "t1")] == [1, 2, 3, 4]
    started = [queue.take_next().run_id]
    queue.add(Job("alice-2", store, "a", share="alice"))  # alice queues again while t0 trains
    started += [queue.take_next().run_id for _ in range(len(queue))]
    assert started == ["t0", "alice", "bob", "t1", "alice-2", "t2", "t3", "t4"]


def test_a_share_served_recently_waits_behind_one_served_longer_ago(tmp_path):
    store, queue = RunStore(tmp_path), RunQueue()
    queue.add(Job("x1", store, "x", share="x"))
    queue.add(Job("y1", store, "y", share="y"))
    assert [queue.take_next().run_id for _ in range(2)] == ["x1", "y1"]  # x then y have started a run
    queue.add(Job("y2", store, "y", share="y"))
    queue.add(Job("x2", store, "x", share="x"))
    assert queue.run_ids() == ["x2", "y2"]  # x's last turn is older than y's, though y queued first
    queue.orphan("x", now=1.0)
    assert queue.run_ids() == ["y2", "x2"] and queue.take_next().run_id == "y2"  # orphans are skipped, listed last


def test_with_one_share_runs_start_in_the_order_they_were_queued(tmp_path):
    store, queue = RunStore(tmp_path), RunQueue()
    for run_id in ("a", "b", "c"):
        queue.add(Job(run_id, store, "x"))
    assert [queue.take_next().run_id for _ in range(3)] == ["a", "b", "c"]


def test_a_job_put_back_goes_first_on_the_turn_it_had(tmp_path):
    """A run taken for a cluster that went away comes back first in line, and its share does not lose a turn for it."""
    store, queue = RunStore(tmp_path), RunQueue()
    for run_id, share in (("x1", "x"), ("y1", "y"), ("x2", "x")):
        queue.add(Job(run_id, store, share, share=share))
    taken = queue.take_next()
    assert taken.run_id == "x1" and queue.run_ids() == ["y1", "x2"]
    queue.add_front(taken)  # (the job manager's requeue)
    assert queue.run_ids() == ["x1", "y1", "x2"] and queue.position("x1") == 1
    assert [queue.take_next().run_id for _ in range(3)] == ["x1", "y1", "x2"]
