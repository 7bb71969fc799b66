"""A classroom at once: one ConvLab server, N browsers training together, one more switching pages.

    python bench/classroom.py [--students 8] [--dataset mnist|digits-8x8] [--workspaces shared|per-browser]
                              [--settle 150] [--students-nice 19] [--out bench/out/classroom.md]

Starts one `streamlit run app.py` (CONVLAB_OFFLINE=1, a temporary run store) and one headless Chromium
(Debian's /usr/bin/chromium, through Playwright) with a browser context per student. At the same time,
every student loads the data, builds the lab CNN and sets a short training with a seed of its own (the
lab recipe, batch 64: 1 epoch of the shipped MNIST, or 3 of the 8x8 digits); then all press Start at the
same moment, wait on the Training page (recording each "Queued, N in line" they are shown) and evaluate.
Meanwhile an observer context switches Data -> Architecture -> Runs every two seconds and times each
switch, from the click to the new page's heading on screen with Streamlit idle, split into the browser
asking, the server running the page and the browser drawing it. With --students-nice the students'
pages run in a Chromium of their own that gives way to everything else, standing in for their own
machines.

It records the server's resident memory (VmRSS of the Streamlit process, and of its training processes)
before, at peak and after; the CPU each party used while the students worked (server, training
processes, browser, the rest of the machine); whether each session saw only its own run (the run id in
its URL is the one its Training and Evaluation pages show, with that run's metrics as the store has
them); and whether every run finished in the store. It prints a summary and writes it as markdown.
Needs Chromium and Playwright; takes a few minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import queue
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.processes import Sampler, rss_mb  # noqa: E402
from core.runs.status import RunState
from core.runs.store import RunStore

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # as the e2e tests
IDLE_JS = ("!document.querySelector('[data-testid=stStatusWidget]') && "
           "!document.querySelector('[data-testid=stSkeleton]')")
RUN_ID = r"\d{8}-\d{6}-[0-9a-f]{6}"
DATASETS = {  # name: (its option on the Data page, parameters of the lab CNN on it, epochs)
    "mnist": ("MNIST handwritten digits", "542,230", 1),
    "digits-8x8": ("scikit-learn digits (8x8)", "30,230", 3),
}
PAGES = [("Data", "1 · Data"), ("Architecture", "2 · Architecture"), ("Runs", "Runs")]  # nav title, heading


# --- the server ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(folder: Path, workspaces: str, log_path: Path,
                 extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, CONVLAB_OFFLINE="1", CONVLAB_RUNS=str(folder / "runs"), KERAS_HOME=str(folder / "keras"),
               CONVLAB_WORKSPACES=workspaces, TF_CPP_MIN_LOG_LEVEL="2", **(extra_env or {}))
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        with open(log_path, "w") as log:
            for line in server.stdout:
                lines.put(line)
                log.write(line)
                log.flush()
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    while True:
        line = lines.get(timeout=120)
        if line is None:
            raise RuntimeError(f"the server exited; see {log_path}")
        if "You can now view" in line:
            break
    url = f"http://127.0.0.1:{port}"
    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=30) as response:
        assert response.status == 200
    return server, url


# --- the browsers ----------------------------------------------------------------------------------------


STUDENTS_GROUP = "students' browser"  # its CPU, as `Sampler` counts it
STUDENTS_FLAG = "--convlab-students"  # marks the students' Chromium (Chromium ignores a switch it does not know)


class GiveWay(threading.Thread):
    """Keeps the processes of the Chromium started with `flag` at `nice`, their autogroups too.

    Chromium starts itself and its zygotes in sessions of their own, and Linux's autogroup scheduler shares
    the processors between sessions first: a plain `nice` on the browser leaves its renderers competing with
    the server as equals. Renderers come and go with the students' pages, so this looks again twice a second.
    """

    def __init__(self, flag: str, nice: int) -> None:
        super().__init__(daemon=True)
        self.flag, self.nice = flag, nice
        self.seen: set[int] = set()
        self._halt = threading.Event()

    def run(self) -> None:
        from bench.processes import descendants, proc_table

        while not self._halt.wait(0.5):
            table = proc_table()
            roots = [pid for pid, (_, _, command) in table.items() if self.flag in command]
            for pid in set(roots).union(*(descendants(table, root) for root in roots)) - self.seen:
                try:
                    os.setpriority(os.PRIO_PROCESS, pid, self.nice)
                    with open(f"/proc/{pid}/autogroup", "w") as autogroup:
                        autogroup.write(str(self.nice))
                    self.seen.add(pid)
                except OSError:
                    pass  # gone already, or no autogroup on this kernel (its niceness is set)

    def stop(self) -> None:
        self._halt.set()
        self.join()


@dataclass
class Student:
    index: int
    run_id: str | None = None
    positions: list[int] = field(default_factory=list)  # each "Queued, N in line" shown, in order
    times: dict[str, float] = field(default_factory=dict)  # seconds since the students began
    training_page: dict[str, str] = field(default_factory=dict)  # what its Training page showed at the end
    evaluation_page: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def seed(self) -> int:
        return 100 + self.index


def main_area(page):
    return page.get_by_test_id("stMainBlockContainer")


async def go(page, title: str) -> None:
    await page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()


async def idle(page, timeout_ms: float = 300_000) -> None:
    await page.wait_for_function(IDLE_JS, timeout=timeout_ms)


async def set_slider(page, label: str, value: int) -> None:
    """Move a slider with the keyboard, as a person would, until it shows `value`."""
    slider = page.locator(f'input[type="range"][aria-label="{label}"]')
    for _ in range(60):
        current = int(await slider.get_attribute("aria-valuetext"))
        if current == value:
            return
        await slider.focus()
        await slider.press("Home" if value == 1 else "ArrowRight" if current < value else "ArrowLeft")
    raise RuntimeError(f"the {label} slider would not move to {value}")


async def set_recipe(page, epochs: int, seed: int) -> None:
    """The lab recipe (already applied) at batch 64, `epochs` epochs and `seed`, as the server has it.

    A rerun started by one change can redraw a widget with the value the server had before the next
    change reached it: set everything again until the server's recipe line shows all of it.
    """
    from playwright.async_api import expect

    recipe = main_area(page).get_by_test_id("stCaptionContainer").filter(has_text="Recipe:")
    await expect(recipe).to_contain_text("batch 32, 10 epochs")
    wanted = (f"learning rate 0\\.01, constant, momentum 0\\.9\\),.* batch 64, "
              f"{'1 epoch' if epochs == 1 else f'{epochs} epochs'},.*seed {seed}\\.")
    for _ in range(5):
        if "learning rate 0.01," not in await recipe.inner_text():  # a key press that landed on another slider
            await main_area(page).get_by_role("button", name="lab", exact=True).click()
            await expect(recipe).to_contain_text("learning rate 0.01, constant")
            await idle(page)
        await set_slider(page, "Epochs", epochs)
        await set_slider(page, "Batch size", 64)
        box = main_area(page).get_by_role("spinbutton", name="Seed")
        if await box.input_value() != str(seed):
            await box.fill(str(seed))
            await box.press("Enter")
        try:
            await expect(recipe).to_contain_text(re.compile(wanted), timeout=30_000)
            return
        except AssertionError:
            continue
    raise RuntimeError(f"the recipe never showed {wanted!r}: {await recipe.inner_text()}")


async def validation_curves(page) -> list[list[float]]:
    """The validation traces (loss, accuracy) of the first chart on the page that has any, as plotted."""
    return await page.evaluate("""() => {
        for (const chart of document.querySelectorAll('[data-testid=stMainBlockContainer] .js-plotly-plot')) {
            const traces = (chart.data || []).filter(t => (t.name || '').startsWith('validation'));
            if (traces.length) return traces.map(t => Array.from(t.y));
        }
        return [];
    }""")


class StartLine:
    """Every student presses Start at the same moment: the queue then holds all the runs but one at once.

    A student that fails before it gets there leaves the line, so the others are not held for ever.
    """

    def __init__(self, students: int) -> None:
        self.expected = students
        self.arrived = 0
        self.go = asyncio.Event()

    async def wait(self) -> None:
        self.arrived += 1
        self._check()
        await self.go.wait()

    def leave(self) -> None:
        self.expected -= 1
        self._check()

    def _check(self) -> None:
        if self.arrived >= self.expected:
            self.go.set()


async def student_session(browser, url: str, student: Student, dataset: str, t0: float, line: StartLine) -> None:
    from playwright.async_api import expect

    title, params, epochs = DATASETS[dataset]
    context = await browser.new_context(viewport={"width": 1400, "height": 1600})
    page = await context.new_page()
    page.set_default_timeout(300_000)
    main = main_area(page)
    try:
        await page.goto(url)
        await expect(page.get_by_role("heading", name="ConvLab")).to_be_visible()
        await go(page, "Data")
        if dataset != "mnist":
            await main.get_by_test_id("stSelectbox").first.click()
            await page.get_by_role("option", name=title).click()
        await expect(main.get_by_text("Training images")).to_be_visible()
        await idle(page)
        student.times["data loaded"] = time.monotonic() - t0

        await go(page, "Architecture")
        await main.get_by_role("button", name="lab", exact=True).click()
        await expect(main.get_by_text(f"Total parameters: {params}")).to_be_visible()
        await main.get_by_role("button", name="Build").click()
        await expect(main.get_by_text(f"{params} parameters, checked layer by layer")).to_be_visible()
        student.times["built"] = time.monotonic() - t0

        await go(page, "Training")
        await expect(main.get_by_role("heading", name="3 · Training")).to_be_visible()
        await main.get_by_role("button", name="lab", exact=True).click()
        await set_recipe(page, epochs, student.seed)
        await idle(page)
        student.times["ready"] = time.monotonic() - t0
        await line.wait()
        await main.get_by_role("button", name="Start training").click()
        student.times["started"] = time.monotonic() - t0
        await page.wait_for_url(re.compile(rf"[?&]run={RUN_ID}"))
        student.run_id = re.search(rf"[?&]run=({RUN_ID})", page.url).group(1)

        deadline = time.monotonic() + 1800
        while True:  # what the page says while the run waits and trains
            text = await main.inner_text()
            queued = re.search(r"Queued, (\d+)\w\w in line", text)
            if queued and (not student.positions or student.positions[-1] != int(queued.group(1))):
                student.positions.append(int(queued.group(1)))
            if "training" not in student.times and re.search(r"Epoch \d+/\d+ · batch", text):
                student.times["training"] = time.monotonic() - t0
            if "Training finished in" in text:
                break
            ended = re.search(r"(Stopped by|The training process|Training failed|Cancelled|The server stopped)[^\n]*",
                              text)
            if ended:
                raise RuntimeError(f"the run ended without finishing: {ended.group(0)}")
            if time.monotonic() > deadline:
                raise RuntimeError("the run did not finish within 30 minutes")
            await asyncio.sleep(1.0)
        student.times["finished"] = time.monotonic() - t0
        await expect(main.get_by_role("link", name="Evaluate on the test set")).to_be_visible()
        await expect(main.get_by_role("button", name="Start training")).to_be_enabled()
        await idle(page)
        text = await main.inner_text()
        shown = re.search(rf"Run .* · ({RUN_ID})", text)
        student.training_page["run"] = shown.group(1) if shown else ""
        metric = main.get_by_test_id("stMetric").filter(has_text=f"validation accuracy (epoch {epochs})")
        student.training_page["val_accuracy"] = await metric.get_by_test_id("stMetricValue").inner_text()
        student.training_page["url_run"] = re.search(rf"[?&]run=({RUN_ID})", page.url).group(1)
        student.training_page["curves"] = await validation_curves(page)

        await go(page, "Evaluation")
        await expect(main.get_by_text("Test accuracy")).to_be_visible()
        await expect(main.get_by_text("The most confident mistakes")).to_be_visible()
        await idle(page)
        metric = main.get_by_test_id("stMetric").filter(has_text="Test accuracy")
        student.evaluation_page["test_accuracy"] = await metric.get_by_test_id("stMetricValue").inner_text()
        caption = re.search(rf"run ({RUN_ID})", await main.inner_text())
        student.evaluation_page["run"] = caption.group(1) if caption else ""
        student.evaluation_page["curves"] = await validation_curves(page)
        student.times["evaluated"] = time.monotonic() - t0
    except Exception as error:  # noqa: BLE001 - recorded in the report, the other students go on
        student.error = f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
        if "ready" not in student.times:
            line.leave()
    finally:
        await context.close()


class Wire:
    """When the observer's page sent its messages and when the server finished each script run.

    Splits a page switch in three: the browser until it asks for the new page (the click to the first
    message sent), the server until the page's script has run (to the next full run's `script_finished`),
    and the browser again until the page is drawn and idle.
    """

    def __init__(self, page) -> None:
        self.sent: list[float] = []
        self.finished: list[float] = []  # a full script run's end, not a fragment's
        page.on("websocket", self._watch)

    def _watch(self, socket) -> None:
        socket.on("framesent", lambda _payload: self.sent.append(time.monotonic()))
        socket.on("framereceived", self._received)

    def _received(self, payload) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        if isinstance(payload, str):
            return
        try:
            message = ForwardMsg.FromString(payload)
        except Exception:  # noqa: BLE001 - not a message of this Streamlit's: not a run's end
            return
        if (message.WhichOneof("type") == "script_finished"
                and message.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY):
            self.finished.append(time.monotonic())

    def split(self, clicked: float, done: float) -> dict[str, float] | None:
        asked = next((t for t in self.sent if clicked <= t <= done), None)
        answered = next((t for t in self.finished if asked is not None and asked <= t <= done), None)
        if asked is None or answered is None:
            return None
        return {"browser_before": asked - clicked, "server": answered - asked, "browser_after": done - answered}


async def observer_session(page, switches: list[dict], stop: asyncio.Event, t0: float, record: bool = True,
                           rounds: int | None = None, wire: Wire | None = None) -> None:
    """Switch Data -> Architecture -> Runs every two seconds; time each switch."""
    from playwright.async_api import expect

    count = 0
    while not stop.is_set() and (rounds is None or count < rounds * len(PAGES)):
        title, heading = PAGES[count % len(PAGES)]
        count += 1
        clicked = time.monotonic()
        await go(page, title)
        await expect(main_area(page).get_by_role("heading", name=heading, exact=True)).to_be_visible(timeout=300_000)
        await idle(page)
        done = time.monotonic()
        if record:
            switch = {"at": clicked - t0, "page": title, "seconds": done - clicked}
            parts = wire.split(clicked, done) if wire else None
            if parts:
                switch.update(parts)
            switches.append(switch)
        try:
            await asyncio.wait_for(stop.wait(), timeout=2.0)
        except asyncio.TimeoutError:
            pass


async def classroom(url: str, args, sampler: Sampler, students: list[Student], switches: list[dict]) -> float:
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=300_000)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        students_browser = browser
        yielding = None
        if args.students_nice:
            students_browser = await p.chromium.launch(executable_path=CHROMIUM, args=[*LAUNCH_ARGS, STUDENTS_FLAG])
            yielding = GiveWay(STUDENTS_FLAG, args.students_nice)
            yielding.start()
        context = await browser.new_context(viewport={"width": 1400, "height": 1600})
        observer = await context.new_page()
        observer.set_default_timeout(300_000)
        wire = Wire(observer)
        await observer.goto(url)
        await expect(observer.get_by_role("heading", name="ConvLab")).to_be_visible()
        await observer_session(observer, [], asyncio.Event(), 0.0, record=False, rounds=1)  # warm: first visits
        sampler.mark("students begin")
        t0 = time.monotonic()
        sampler.t0_wall = time.time()
        stop = asyncio.Event()
        watching = asyncio.create_task(observer_session(observer, switches, stop, t0, wire=wire))
        line = StartLine(len(students))
        await asyncio.gather(*(student_session(students_browser, url, s, args.dataset, t0, line) for s in students))
        elapsed = time.monotonic() - t0
        stop.set()
        await watching
        sampler.mark("students done")
        await context.close()
        if yielding is not None:
            yielding.stop()
        if students_browser is not browser:
            await students_browser.close()
        await browser.close()
    return elapsed


# --- the report ------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def same_curves(shown: list[list[float]] | None, stored: list[list[float]]) -> bool:
    return bool(shown) and len(shown) == len(stored) and all(
        len(a) == len(b) and all(abs(x - y) < 1e-9 for x, y in zip(a, b)) for a, b in zip(shown, stored))


def find_run(runs_root: Path, run_id: str) -> RunStore | None:
    for folder in runs_root.rglob(run_id):
        if folder.is_dir():
            return RunStore(folder.parent)
    return None


def check_students(runs_root: Path, students: list[Student], epochs: int) -> list[dict]:
    """Each student's run, as the store has it, against what its pages showed."""
    rows = []
    for s in students:
        row = {"student": s.index + 1, "run": s.run_id, "positions": s.positions, "error": s.error}
        store = find_run(runs_root, s.run_id) if s.run_id else None
        if store is None:
            row.update(finished=False, own=False)
            rows.append(row)
            continue
        status, spec, epoch_rows = store.status(s.run_id), store.spec(s.run_id), store.epochs(s.run_id)
        test = store.test_metrics(s.run_id)
        row["finished"] = status.state is RunState.FINISHED and test is not None and len(epoch_rows) == epochs
        val = f"{epoch_rows[-1]['val_accuracy']:.2%}" if epoch_rows else "?"
        accuracy = f"{test['accuracy']:.2%}" if test else "?"
        curves = [[row["val_loss"] for row in epoch_rows], [row["val_accuracy"] for row in epoch_rows]]
        row["own"] = (spec.training.seed == s.seed and s.training_page.get("run") == s.run_id
                      and s.training_page.get("url_run") == s.run_id and s.evaluation_page.get("run") == s.run_id
                      and s.training_page.get("val_accuracy") == val and s.evaluation_page.get("test_accuracy") == accuracy
                      and same_curves(s.training_page.get("curves"), curves)
                      and same_curves(s.evaluation_page.get("curves"), curves))
        row.update(val_accuracy=val, test_accuracy=accuracy, training_s=status.training_s,
                   waited_s=(s.times.get("training", 0) - s.times.get("started", 0)) if "training" in s.times else None,
                   start_to_finished_s=s.times.get("finished", 0) - s.times.get("started", 0) if "finished" in s.times else None)
        rows.append(row)
    return rows


def report(args, students, rows, switches, sampler: Sampler, memory: dict, elapsed: float, all_runs: dict,
           leftover_workers: list[int], commit: str) -> str:
    seconds = [s["seconds"] for s in switches]
    under = sum(1 for v in seconds if v < 1.0)
    cpu = sampler.between("students begin", "students done")
    during = sampler.memory("students begin", "students done")
    own = all(row.get("own") for row in rows)
    finished = sum(1 for row in rows if row.get("finished"))
    lines = [
        "# Classroom load test", "",
        f"{time.strftime('%Y-%m-%d %H:%M')} · commit `{commit}` · {platform.node()} · {os.cpu_count()} cores · "
        f"Python {platform.python_version()} · `python bench/classroom.py --students {args.students} "
        f"--dataset {args.dataset} --workspaces {args.workspaces}"
        + (f" --students-nice {args.students_nice}" if args.students_nice else "") + "`", "",
        f"One server (`streamlit run app.py`, CONVLAB_OFFLINE=1, CONVLAB_WORKSPACES={args.workspaces}, "
        f"{os.environ.get('CONVLAB_MAX_TRAININGS') or 'default'} trainings at once), "
        + (f"the students in a headless Chromium of their own at niceness {args.students_nice} (its autogroups too) "
           "and the observer in "
           "another at normal priority, " if args.students_nice else "one headless Chromium, ")
        + f"{args.students} student contexts at the same time (load {args.dataset}, build lab, train the lab recipe at "
        f"batch 64 for {DATASETS[args.dataset][2]} epoch(s) with a seed each, wait, evaluate) and one observer "
        "switching Data -> Architecture -> Runs every 2 s.", "",
        "| measure | value |", "|---|---|",
        f"| sessions | {args.students} students + 1 observer |",
        f"| runs | {len([r for r in rows if r['run']])} started, {finished} finished in the store, "
        f"{sum(1 for r in all_runs.values() if r != 'finished')} not finished; {len(all_runs)} run folders in all |",
        "| queue positions seen | " + "; ".join(
            f"s{r['student']}: {'→'.join(map(str, r['positions'])) or 'none (trained at once)'}" for r in rows) + " |",
        f"| all students done after | {elapsed:.0f} s |",
        f"| from Start to finished (per run) | median {statistics.median([r['start_to_finished_s'] for r in rows if r.get('start_to_finished_s')] or [0]):.0f} s, "
        f"max {max([r['start_to_finished_s'] for r in rows if r.get('start_to_finished_s')] or [0]):.0f} s |",
        f"| training time per run (store) | median {statistics.median([r['training_s'] for r in rows if r.get('training_s')] or [0]):.1f} s |",
    ]
    if seconds:
        lines.append(f"| page switches (observer) | {len(seconds)}: median {statistics.median(seconds):.2f} s, "
                     f"p90 {percentile(seconds, 0.9):.2f} s, max {max(seconds):.2f} s; under 1 s: {under}/{len(seconds)} |")
        for label, subset in (("while a run trained", True), ("while none trained", False)):
            values = [s["seconds"] for s in switches if s.get("while_training") is subset]
            if values:
                lines.append(f"| switches {label} | median {statistics.median(values):.2f} s, "
                             f"max {max(values):.2f} s ({len(values)}) |")
        split = [s for s in switches if "server" in s]
        if split:
            slow = [s for s in split if s["seconds"] >= 1.0]
            lines.append("| where a switch's time went: browser to ask, server to run the page, browser to draw "
                         f"| median {statistics.median(s['browser_before'] for s in split):.2f} + "
                         f"{statistics.median(s['server'] for s in split):.2f} + "
                         f"{statistics.median(s['browser_after'] for s in split):.2f} s ({len(split)} switches) |")
            if slow:
                lines.append(f"| the same, in the {len(slow)} switches of 1 s or more "
                             f"| median {statistics.median(s['browser_before'] for s in slow):.2f} + "
                             f"{statistics.median(s['server'] for s in slow):.2f} + "
                             f"{statistics.median(s['browser_after'] for s in slow):.2f} s |")
        for name, _ in PAGES:
            values = [s["seconds"] for s in switches if s["page"] == name]
            if values:
                lines.append(f"| switches to {name} | median {statistics.median(values):.2f} s, "
                             f"max {max(values):.2f} s ({len(values)}) |")
    lines += [
        f"| server memory (VmRSS) | before {memory['before_server']:.0f} MB, peak {during['server_peak']:.0f} MB, "
        f"after {memory['after_server']:.0f} MB |",
        f"| training processes' memory | peak {during['workers_peak']:.0f} MB in {during['workers_max']} process(es) "
        f"at once; after {memory['after_workers']:.0f} MB in {memory['after_worker_count']} (the spare) |",
        f"| server + training processes | peak {during['total_peak']:.0f} MB |",
        f"| CPU while the students worked (cores) | server {cpu['server']:.2f}, training processes {cpu['workers']:.2f}, "
        + (f"the observer's browser {cpu['browser']:.2f}, the students' browser {cpu[STUDENTS_GROUP]:.2f}, "
           if args.students_nice else f"browser {cpu['browser']:.2f}, ")
        + f"this script {cpu['scripts']:.2f}, rest of the machine {cpu['rest of the machine']:.2f}; machine "
        f"{cpu['machine']:.2f} of {os.cpu_count()} |",
        f"| load average | before {memory['load_before'][0]:.2f}, at the end {memory['load_after'][0]:.2f} |",
        f"| each session saw only its own run and curves (run id in its URL, Training and Evaluation pages; "
        f"the metrics and validation curves they plot against the store's) | {'yes' if own else 'NO'} |",
        f"| nothing lost | {'yes' if finished == args.students and all(v == 'finished' for v in all_runs.values()) else 'NO'} |",
        f"| the server | {memory.get('server_stop', '?')}; training processes left after it: {len(leftover_workers)} |",
        "", "## Per student", "",
        "| student | run | queue positions shown | Start → training | Start → finished | val acc. (page = store) "
        "| test acc. (page = store) | own run | problem |", "|---|---|---|---|---|---|---|---|---|",
    ]
    for row, s in zip(rows, students):
        waited = f"{row['waited_s']:.0f} s" if row.get("waited_s") is not None else "?"
        done = f"{row['start_to_finished_s']:.0f} s" if row.get("start_to_finished_s") is not None else "?"
        lines.append(f"| {row['student']} | `{row['run']}` | {'→'.join(map(str, row['positions'])) or '-'} | {waited} "
                     f"| {done} | {s.training_page.get('val_accuracy', '?')} = {row.get('val_accuracy', '?')} "
                     f"| {s.evaluation_page.get('test_accuracy', '?')} = {row.get('test_accuracy', '?')} "
                     f"| {'yes' if row.get('own') else 'no'} | {row['error'] or ''} |")
    if seconds:
        lines += ["", "## Page switches", "", "seconds after the students began: page, seconds (1 s or more: the browser to ask + the server + the browser to draw)", "",
                  ", ".join(f"{s['at']:.0f}: {s['page']} {s['seconds']:.2f}" + (
                      f" ({s['browser_before']:.2f}+{s['server']:.2f}+{s['browser_after']:.2f})"
                      if "server" in s and s["seconds"] >= 1.0 else "") for s in switches)]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=8)
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    parser.add_argument("--workspaces", choices=["shared", "per-browser"], default="shared")
    parser.add_argument("--settle", type=float, default=15.0, help="seconds after the sessions closed before 'after'")
    parser.add_argument("--students-nice", type=int, default=0, metavar="N",
                        help="run the students' browser (a Chromium of its own) at this niceness, its autogroups "
                             "too, standing in for the students' own machines: their pages' drawing then does not "
                             "take the CPU the server and the observer need (0: one browser for all, at normal "
                             "priority)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "classroom.md")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"error: {CHROMIUM} is not installed (apt-get install chromium)", file=sys.stderr)
        return 1
    result = run_classroom(args)
    print(result["text"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(result["text"])
    (args.out.with_suffix(".json")).write_text(json.dumps(result["json"], indent=1, default=str))
    print(f"written: {args.out} (and {args.out.with_suffix('.json').name}); server log {result['folder'] / 'server.log'}")
    return 0 if result["ok"] else 1


def run_classroom(args, extra_env: dict[str, str] | None = None, folder: Path | None = None) -> dict:
    """One classroom against a fresh server (`extra_env` added to its environment; its run store under
    `folder`/runs): the report's text, its figures as JSON, the rows per student, the server's folder and
    whether every run finished as its own."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    folder = folder or Path(tempfile.mkdtemp(prefix="convlab-classroom-"))
    load_before = os.getloadavg()
    server, url = start_server(folder, args.workspaces, folder / "server.log", extra_env)
    sampler = Sampler(server.pid, students_flag=STUDENTS_FLAG if args.students_nice else None)
    sampler.start()
    students = [Student(index) for index in range(args.students)]
    switches: list[dict] = []
    memory: dict = {"load_before": load_before}
    try:
        time.sleep(2.0)  # the server at rest, before anyone connects
        memory["before_server"] = rss_mb(server.pid)
        elapsed = asyncio.run(classroom(url, args, sampler, students, switches))
        time.sleep(args.settle)  # the sessions are closed: what the server keeps
        sampler.mark("after")
        memory.update(after_server=rss_mb(server.pid), load_after=os.getloadavg(),
                      after_workers=sampler.samples[-1]["workers_mb"], after_worker_count=sampler.samples[-1]["workers"])
    finally:
        sampler.stop()
        stopping = time.monotonic()
        server.terminate()
        try:
            server.wait(timeout=60)
            memory["server_stop"] = f"stopped {time.monotonic() - stopping:.1f} s after SIGTERM"
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            memory["server_stop"] = "still running 60 s after SIGTERM: killed"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in sampler.worker_pids):
        time.sleep(0.5)
    leftover = [pid for pid in sampler.worker_pids if Path(f"/proc/{pid}").exists()
                and "core.engine.worker" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")]

    runs_root = folder / "runs"
    all_runs = {summary.run_id: summary.state.value for store_root in [runs_root, *runs_root.glob("workspaces/*")]
                for summary in RunStore(store_root).list()}
    rows = check_students(runs_root, students, DATASETS[args.dataset][2])
    training = [(status.started, status.ended) for store_root in [runs_root, *runs_root.glob("workspaces/*")]
                for run_id in RunStore(store_root).run_ids()
                for status in [RunStore(store_root).status(run_id)] if status.started and status.ended]
    for switch in switches:  # was a run training when it was clicked?
        clicked = sampler.t0_wall + switch["at"]
        switch["while_training"] = any(start <= clicked <= end for start, end in training)
    text = report(args, students, rows, switches, sampler, memory, elapsed, all_runs, leftover, commit)
    figures = {"switches": switches, "students": [s.__dict__ for s in students], "rows": rows, "memory": memory,
               "marks": sampler.marks, "samples": sampler.samples, "t0": sampler.marks["students begin"]["t"],
               "server_log": str(folder / "server.log")}
    return {"text": text, "json": figures, "rows": rows, "all_runs": all_runs, "elapsed": elapsed,
            "switches": switches, "memory": memory, "folder": folder, "leftover": leftover,
            "server_peak_mb": sampler.memory("students begin", "students done")["server_peak"],
            "t0_wall": sampler.t0_wall, "ok": all(row.get("finished") and row.get("own") for row in rows)}


if __name__ == "__main__":
    sys.exit(main())
