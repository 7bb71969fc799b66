"""Hostile uploads against a real server, in headless Chromium: the server's memory and disk before, at the peak
and after each, with the budgets holding.

    python3 bench/hostile.py [--budget-mb 1000] [--quota-mb 250] [--out bench/out/hostile.json]

The server runs offline with a memory budget and an uploads quota small enough to be reached here. Each attack
is made by a fresh browser session (a new tab): model files whose layers blow up the activations or the
parameters, a model file whose weights unpack to 400 MB, four sessions each loading a different 94 MB .npz, an
.npz with a stray label, a zip of tiny files that declare huge pictures, a large transparent picture and an EPS
file on Draw & classify, and uploads past the quota. The server's resident memory is sampled every 0.1 s; the
run store's size is measured before and after. Then the four sessions close, and the script waits for the
server's memory to come back (a closed session's datasets are released when its tab closes).
It prints a table and writes the figures as JSON; exit code 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.classroom import start_server  # noqa: E402
from bench.machine import describe_machine  # noqa: E402
from bench.processes import rss_mb  # noqa: E402
from core.data.dataset import DatasetRef  # noqa: E402
from core.engine.execute import execute  # noqa: E402
from core.model.architecture import Architecture, ConvBlock, DenseLayer  # noqa: E402
from core.runs.spec import RunSpec  # noqa: E402
from core.runs.store import RunStore  # noqa: E402
from core.training.config import TrainingConfig  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
IDLE = "!document.querySelector('[data-testid=stStatusWidget]')"


class Peak(threading.Thread):
    """The server's resident memory every 0.1 s; `take()` gives the peak since the last call."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, 0.0, True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.1)

    def take(self) -> float:
        peak, self.peak = self.peak, rss_mb(self.pid)
        return peak


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6 if path.exists() else 0.0


# --- the payloads -----------------------------------------------------------------------------------------


def keras_file(config: dict, weights: bytes = b"\x89HDF", compress: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", weights)
    return buffer.getvalue()


def sequential(*layers: tuple[str, dict]) -> dict:
    return {"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": [
        {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [None, 28, 28, 1]}},
        *({"module": "keras.layers", "class_name": kind, "config": config} for kind, config in layers)]}}


def npz_bytes(images: int, seed: int, stray: bool = False) -> bytes:
    rng = np.random.default_rng(seed)
    labels = np.arange(images) % 10
    if stray:
        labels[-1] = 999
    buffer = io.BytesIO()
    np.savez(buffer, x_train=rng.integers(0, 256, (images, 28, 28), dtype=np.uint8), y_train=labels,
             x_test=rng.integers(0, 256, (100, 28, 28), dtype=np.uint8), y_test=np.arange(100) % 10)
    return buffer.getvalue()


def huge_pixels_zip(count: int, side: int) -> bytes:
    picture = io.BytesIO()
    Image.new("L", (side, side)).save(picture, "PNG", optimize=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(count):
            archive.writestr(f"{'ab'[i % 2]}/{i}.png", picture.getvalue())
    return buffer.getvalue()


def transparent_png(side: int) -> bytes:
    rng = np.random.default_rng(0)
    rgba = np.zeros((side, side, 4), np.uint8)
    rgba[..., 3] = rng.integers(0, 2, (side, side), dtype=np.uint8) * 255  # noise: it does not compress away
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, "PNG")
    return buffer.getvalue()


def payloads(folder: Path) -> dict[str, Path]:
    files = {
        "model-blowup.keras": keras_file(sequential(("UpSampling2D", {"size": [64, 64]}),
                                                    ("Conv2D", {"filters": 64, "kernel_size": 1}),
                                                    ("GlobalAveragePooling2D", {}), ("Dense", {"units": 10}))),
        "model-params.keras": keras_file(sequential(("Flatten", {}), ("Dense", {"units": 200_000}),
                                                    ("Dense", {"units": 10}))),
        "model-bomb.keras": keras_file(sequential(("Flatten", {}), ("Dense", {"units": 10})), bytes(400_000_000),
                                       compress=True),
        "stray-label.npz": npz_bytes(1000, 0, stray=True),
        "huge-pixels.zip": huge_pixels_zip(500, 6000),
        "transparent.png": transparent_png(6000),
        "evil.eps": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\nshowpage\n",
    }
    for seed in range(4):
        files[f"big-{seed}.npz"] = npz_bytes(120_000, seed)
    paths = {}
    for name, data in files.items():
        paths[name] = folder / name
        paths[name].write_bytes(data)
    return paths


# --- the browser ------------------------------------------------------------------------------------------


def tab(browser, url: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    page = context.new_page()
    page.set_default_timeout(180_000)
    page.goto(url)
    page.get_by_test_id("stMainBlockContainer").wait_for()
    if "/data" in url:  # the Data page has loaded the session's dataset (a first visit may rerun on the way)
        page.get_by_test_id("stMainBlockContainer").get_by_text("Training images").wait_for()
    page.wait_for_function(IDLE)
    return context, page


def text_of(element) -> str:
    """An element's text on one line, or "" when it went away meanwhile (the page reran)."""
    try:
        return element.inner_text(timeout=1000).replace("\n", " ")
    except Exception:  # noqa: BLE001 - playwright's TimeoutError: gone since it was listed
        return ""


def said(page, expected: str) -> str:
    """The first message matching `expected` (a regular expression), once it shows (or all messages after 3 min)."""
    pattern = re.compile(expected)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        # (a file type the uploader does not take is refused by the browser, under the uploader)
        texts = [text for test_id in ("stAlertContainer", "stMetric", "stFileUploader")
                 for element in page.get_by_test_id(test_id).all() for text in [text_of(element)] if text]
        found = [text for text in texts if pattern.search(text)]
        if found:
            return found[0][:200]
        page.wait_for_timeout(200)
    return "(nothing matched) " + " | ".join(texts)[:200]


def choose_dataset(page, title: str) -> None:
    main = page.get_by_test_id("stMainBlockContainer")
    main.get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option", name=title).click()
    page.wait_for_function(IDLE)


def upload_npz(browser, url: str, path: Path):
    context, page = tab(browser, f"{url}/data")
    choose_dataset(page, "Upload a Keras-layout .npz…")
    page.locator("input[type=file]").first.set_input_files(str(path))
    return context, page


def upload_zip(browser, url: str, path: Path):
    context, page = tab(browser, f"{url}/data")
    choose_dataset(page, "Upload a zip of class folders…")
    page.locator("input[type=file]").first.set_input_files(str(path))
    load = page.get_by_role("button", name="Load these images")
    load.wait_for()
    load.click()
    return context, page


def upload_model(browser, url: str, path: Path):
    context, page = tab(browser, f"{url}/data")  # the Data page loads MNIST into the session
    page.get_by_test_id("stSidebarNav").get_by_text("Runs", exact=True).click()
    page.wait_for_function(IDLE)
    page.get_by_text("Bring your own model (.keras)").click()
    page.locator("input[type=file]").first.set_input_files(str(path))
    return context, page


def upload_picture(browser, url: str, run_id: str, path: Path):
    context, page = tab(browser, f"{url}/draw?run={run_id}")
    page.get_by_text("Classify a picture").wait_for()
    page.locator("input[type=file]").last.set_input_files(str(path))
    return context, page


def trained_run(store: RunStore) -> str:
    arch = Architecture(conv_blocks=(ConvBlock(filters=4),), dense_layers=(DenseLayer(units=8),), name="small")
    run_id = store.create(RunSpec(DatasetRef.of("builtin", "mnist-10k"), arch,
                                  TrainingConfig(optimizer="adam", epochs=1, batch_size=256)))
    execute(store, run_id, allow_download=False)
    return run_id


# --- the attacks ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-mb", type=int, default=1000, help="the server's memory budget for the run")
    parser.add_argument("--quota-mb", type=int, default=250, help="the uploads quota for the run")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "hostile.json")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="convlab-hostile-"))
    files = payloads(work)
    store = RunStore(work / "runs")
    run_id = trained_run(store)
    os.environ["CONVLAB_MEMORY_BUDGET_MB"] = str(args.budget_mb)
    os.environ["CONVLAB_UPLOAD_QUOTA_MB"] = str(args.quota_mb)
    server, url = start_server(work, "shared", work / "server.log")
    rows: list[dict] = []
    peak = Peak(server.pid)
    peak.start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
            warm, warm_page = tab(browser, f"{url}/data")  # MNIST loaded by one session: the server's baseline
            baseline = rss_mb(server.pid)
            peak.take()

            def attack(name: str, what: str, run, expected: str) -> None:
                before, disk_before = rss_mb(server.pid), folder_mb(store.root)
                peak.take()
                started = time.perf_counter()
                context, page = run()
                message = said(page, expected)
                rows.append({"attack": name, "what": what, "seconds": round(time.perf_counter() - started, 1),
                             "rss_before_mb": round(before), "rss_peak_mb": round(peak.take()),
                             "rss_after_mb": round(rss_mb(server.pid)),
                             "disk_added_mb": round(folder_mb(store.root) - disk_before, 1), "said": message})
                print(json.dumps(rows[-1]), flush=True)
                context.close()

            for name, what in (("model-blowup.keras", "a model file whose layers blow up the activations"),
                               ("model-params.keras", "a model file declaring 159,000,010 parameters"),
                               ("model-bomb.keras", "a model file whose weights unpack to 400 MB")):
                attack(name, f"{what} ({files[name].stat().st_size / 1e3:,.0f} kB)",
                       lambda name=name: upload_model(browser, url, files[name]), r"Refused|passed the checks")
            attack("stray-label.npz", "an .npz whose labels are 0-9 and one 999",
                   lambda: upload_npz(browser, url, files["stray-label.npz"]), r"Could not load|Uploaded file")
            attack("huge-pixels.zip", f"500 tiny PNGs declaring 36 MP each ({files['huge-pixels.zip'].stat().st_size / 1e6:.1f} MB)",
                   lambda: upload_zip(browser, url, files["huge-pixels.zip"]), r"Could not load|Decoded")
            attack("transparent.png", f"a 6000x6000 transparent PNG on Draw & classify "
                                      f"({files['transparent.png'].stat().st_size / 1e6:.1f} MB)",
                   lambda: upload_picture(browser, url, run_id, files["transparent.png"]),
                   r"Prediction|cannot be read|too large|No digit")
            attack("evil.eps", "an EPS file on Draw & classify (its decoder would run Ghostscript)",
                   lambda: upload_picture(browser, url, run_id, files["evil.eps"]),
                   r"not an image|not allowed|Prediction")

            # four sessions, each loading a different 94 MB .npz, kept open; then closed
            sessions = []
            before_sessions = rss_mb(server.pid)
            for seed in range(4):
                name = f"big-{seed}.npz"
                disk_before = folder_mb(store.root)
                peak.take()
                context, page = upload_npz(browser, url, files[name])
                message = said(page, r"Could not load|Uploaded file")
                sessions.append(context)
                rows.append({"attack": name, "what": f"session {seed + 1} of 4 loads a different 94 MB .npz",
                             "rss_before_mb": round(before_sessions), "rss_peak_mb": round(peak.take()),
                             "rss_after_mb": round(rss_mb(server.pid)),
                             "disk_added_mb": round(folder_mb(store.root) - disk_before, 1), "said": message})
                print(json.dumps(rows[-1]), flush=True)
            held = rss_mb(server.pid)
            closed = time.perf_counter()
            for context in sessions:
                context.close()
            released_after = None
            while time.perf_counter() - closed < 120:
                if rss_mb(server.pid) < before_sessions + 100:
                    released_after = time.perf_counter() - closed
                    break
                time.sleep(1)
            rows.append({"attack": "4 tabs closed", "what": "the four sessions close their tabs",
                         "rss_before_mb": round(held), "rss_after_mb": round(rss_mb(server.pid)),
                         "released_after_s": None if released_after is None else round(released_after, 1)})
            print(json.dumps(rows[-1]), flush=True)
            warm.close()
            browser.close()
    finally:
        peak.running = False
        server.terminate()
        server.wait(timeout=30)
    summary = {"machine": describe_machine(), "budget_mb": args.budget_mb, "quota_mb": args.quota_mb,
               "baseline_rss_mb": round(baseline), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1))
    print(f"\n{summary['machine']}; memory budget {args.budget_mb} MB, uploads quota {args.quota_mb} MB; "
          f"server with MNIST loaded: {summary['baseline_rss_mb']} MB\n")
    print("| attack | server RSS before → peak → after (MB) | disk added (MB) | what the user sees |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['what']} | {row.get('rss_before_mb')} → {row.get('rss_peak_mb', '-')} → {row['rss_after_mb']} "
              f"| {row.get('disk_added_mb', '-')} | {row.get('said') or ('released after ' + str(row.get('released_after_s')) + ' s')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
