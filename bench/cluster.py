"""The classroom on the local pool and on a two-node Ray cluster, side by side in one run.

    python bench/cluster.py [--students 8 16] [--dataset mnist] [--out bench/out/cluster.md]

For each class size, two classrooms (`bench/classroom.py`: N students press Start at once on one server,
an observer switches pages) run one after the other, their order alternating from size to size:
- **local**: the server's own worker pool, two trainings at once (CONVLAB_MAX_TRAININGS=2);
- **cluster**: a real Ray cluster started here (`tests/ray_cluster.py`: a head and a second node, one CPU
  each, token authentication on), the server pointed at it (CONVLAB_RAY_ADDRESS): two slots.
Both have two training slots on the same two cores, so what differs is the path a run takes. Per run it
reports the **turnover** (slot-seconds per run: from the students' Start to the last run's end, times the
slots, over the runs), the training time the store records and their difference (the overhead around a
run); each student's Start-to-finished; the observer's page switches; the server's memory; and whether
anything was lost. On the cluster side it checks that every run trained on the node Ray's scheduler put
its slot on (the node its `placement.json` records, from Ray's job list, against the raylet its training
process was seen under while it trained) and counts the runs per node. Needs Chromium, Playwright and Ray; takes about 15 minutes.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.classroom import CHROMIUM, DATASETS, run_classroom  # noqa: E402
from core.errors import RunError  # noqa: E402
from core.runs.store import RunStore  # noqa: E402
from tests.ray_cluster import LocalRayCluster, descendants  # noqa: E402

SLOTS = 2


def stores(runs_root: Path) -> list[RunStore]:
    return [RunStore(root) for root in [runs_root, *runs_root.glob("workspaces/*")] if root.is_dir()]


def per_run(result: dict) -> dict:
    """Turnover, training time and overhead per run, from the store and the students' clicks."""
    runs_root = result["folder"] / "runs"
    statuses = [store.status(run_id) for store in stores(runs_root) for run_id in store.run_ids()]
    ended = [s.ended for s in statuses if s.ended]
    training = [s.training_s for s in statuses if s.training_s]
    clicks = [r["started"] for r in (st.get("times", {}) for st in result["json"]["students"]) if "started" in r]
    first_click = result["t0_wall"] + min(clicks)
    turnover = (max(ended) - first_click) * SLOTS / len(ended)
    finished = [r["start_to_finished_s"] for r in result["rows"] if r.get("start_to_finished_s")]
    return {"runs": len(statuses), "turnover_s": turnover, "training_s": statistics.median(training),
            "overhead_s": turnover - statistics.median(training),
            "start_to_finished": (statistics.median(finished), max(finished)) if finished else (0.0, 0.0),
            "switch_median": statistics.median(s["seconds"] for s in result["switches"]) if result["switches"] else 0,
            "switch_max": max((s["seconds"] for s in result["switches"]), default=0.0),
            "server_peak_mb": result["server_peak_mb"], "ok": result["ok"],
            "lost": sum(1 for state in result["all_runs"].values() if state != "finished"),
            "not_ok": [{key: row.get(key) for key in ("student", "run", "finished", "own", "error", "val_accuracy",
                                                       "test_accuracy")}
                       for row in result["rows"] if not (row.get("finished") and row.get("own"))]}


class Witness(threading.Thread):
    """Sees, while the class trains, under which node's raylet each training process really runs: the run's
    owner pid (its worker) among the descendants of the raylet started with that node's manager port."""

    def __init__(self, runs_root: Path, cluster: LocalRayCluster) -> None:
        super().__init__(daemon=True)
        self.runs_root, self.cluster = runs_root, cluster
        self.seen: dict[str, set[str]] = {}  # run id -> the nodes its process was found under
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            raylets = {node.name: _raylet_of(node.manager_port) for node in self.cluster.nodes}
            under = {name: set(descendants(pid)) for name, pid in raylets.items() if pid}
            for store in stores(self.runs_root) if self.runs_root.is_dir() else []:
                for run_id in store.run_ids():
                    try:
                        status = store.raw_status(run_id)
                    except RunError:  # (its folder is being made)
                        continue
                    if status.state.is_training and status.owner is not None:
                        for name, pids in under.items():
                            if status.owner.pid in pids:
                                self.seen.setdefault(run_id, set()).add(name)


def _raylet_of(manager_port: int) -> int | None:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "raylet" in command and re.search(rf"--node_manager_port={manager_port}\b", command):
                return int(entry.name)
    return None


def placements(result: dict, cluster: LocalRayCluster, witness: Witness) -> dict:
    """Did each run train on the node Ray's scheduler put its slot on (the slot job's driver node, as
    the run's placement.json records it), and was its process really there? How many runs on each node."""
    per_node: dict[str, int] = {}
    checked = mismatched = 0
    for store in stores(result["folder"] / "runs"):
        for run_id in store.run_ids():
            for record in store.placement(run_id)[-1:]:  # (a run resumed elsewhere: its last node)
                checked += 1
                name = cluster.node_of(record["node"])
                mismatched += witness.seen.get(run_id) != {name}
                per_node[name] = per_node.get(name, 0) + 1
    return {"checked": checked, "mismatched": mismatched, "per_node": per_node}


def classroom(students: int, dataset: str, side: str) -> tuple[dict, dict | None]:
    args = SimpleNamespace(students=students, dataset=dataset, workspaces="shared", settle=5.0, students_nice=0)
    if side == "local":
        return per_run(run_classroom(args, {"CONVLAB_MAX_TRAININGS": str(SLOTS)})), None
    cluster = LocalRayCluster(Path(tempfile.mkdtemp(prefix="convlab-bench-ray-")), cpus=1).start()
    folder = Path(tempfile.mkdtemp(prefix="convlab-classroom-"))
    witness = Witness(folder / "runs", cluster)
    witness.start()
    try:
        result = run_classroom(args, {"CONVLAB_RAY_ADDRESS": cluster.address, **cluster.env}, folder)
        witness.done.set()
        return per_run(result), placements(result, cluster, witness)
    finally:
        witness.done.set()
        cluster.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "cluster.md")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"error: {CHROMIUM} is not installed (apt-get install chromium)", file=sys.stderr)
        return 1
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    lines = ["# The classroom on the local pool and on a two-node Ray cluster", "",
             f"{time.strftime('%Y-%m-%d %H:%M')} · commit `{commit}` · {platform.node()} · {os.cpu_count()} cores · "
             f"`python bench/cluster.py --students {' '.join(map(str, args.students))} --dataset {args.dataset}`", "",
             "| students | side | runs | turnover per run (slot-s) | training per run | overhead per run "
             "| Start → finished (median, max) | page switch (median, max) | server peak | lost | own runs "
             "| runs on the scheduler's node | runs per node |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    ratios = []
    ok = True
    for index, students in enumerate(args.students):
        sides = ("local", "cluster") if index % 2 == 0 else ("cluster", "local")
        figures = {}
        for side in sides:
            print(f"{students} students on the {side} side ...", flush=True)
            figures[side], placed = classroom(students, args.dataset, side)
            f = figures[side]
            where = ("-", "-") if placed is None else (
                f"{placed['checked'] - placed['mismatched']}/{placed['checked']}",
                ", ".join(f"{name} {count}" for name, count in sorted(placed["per_node"].items())))
            ok &= f["ok"] and f["lost"] == 0 and (placed is None or placed["mismatched"] == 0)
            lines.append(f"| {students} | {side} | {f['runs']} | {f['turnover_s']:.1f} s | {f['training_s']:.1f} s "
                         f"| {f['overhead_s']:.1f} s | {f['start_to_finished'][0]:.0f} s, "
                         f"{f['start_to_finished'][1]:.0f} s | {f['switch_median']:.2f} s, {f['switch_max']:.2f} s "
                         f"| {f['server_peak_mb']:.0f} MB | {f['lost']} | {'yes' if f['ok'] else 'NO'} "
                         f"| {where[0]} | {where[1]} |")
            print(lines[-1], flush=True)
            for row in f["not_ok"]:  # (what a student's pages showed that did not match the store, and why)
                print(f"    not ok: {row}", flush=True)
        ratios.append((students, figures["cluster"]["turnover_s"] / figures["local"]["turnover_s"]))
    lines += ["", "Cluster turnover per run over local (target ≤ 1.10): "
              + "; ".join(f"{students} students {ratio:.2f}" for students, ratio in ratios)]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
