"""Take a run away (Runs and Evaluation pages): its lab notebook, its report, its model in other formats.

`take_away(run_id, page)` draws one small panel: pick what to make, press Make, download it. Things are made
on the click, in the server, under a spinner: a notebook in a moment, a report or an export in seconds. The
server makes one export at a time (`core.limits.MAX_EXPORTS_AT_ONCE`) and refuses models over
`core.limits.MAX_EXPORT_PARAMS` (the CLI exports those), saying so. An export that fails its check says why.
The session keeps only the last thing made on each page.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import streamlit as st

from core import limits
from core.errors import ConvLabError
from core.limits import format_bytes
from core.runs.store import RunSummary
from ui import runs
from ui.state import TakeAway as KEYS
from ui.widgets import code, md, show_error

NOTEBOOK, REPORT = "notebook", "report"


@st.cache_resource(show_spinner=False)
def _export_slots() -> threading.BoundedSemaphore:
    """Exports made at once on this server, whoever asks."""
    return threading.BoundedSemaphore(limits.MAX_EXPORTS_AT_ONCE)


@dataclass(frozen=True)
class Made:
    """One thing made for download: the file, its name and type, and what to say about it."""

    file_name: str
    data: bytes
    mime: str
    note: str
    extra: tuple[str, bytes] | None = None  # (file name, bytes): the data file a notebook reads
    usage: str = ""  # a line of code that loads it


def _choices(summary: RunSummary) -> dict[str, str]:
    from core.export.formats import FORMATS

    choices = {}
    if summary.origin != "upload":
        choices[NOTEBOOK] = "Lab notebook (.ipynb): the run in plain Keras, to rerun in Jupyter"
    if not summary.state.is_active:
        choices[REPORT] = "Run report (.html): settings, curves, metrics, mistakes; opens offline, prints"
    if summary.has_model and not summary.state.is_active:
        choices |= {key: f"Model: {fmt.label}, takes raw 0..255 pixels" for key, fmt in FORMATS.items()}
    return choices


def take_away(run_id: str, page: str) -> None:
    """The panel for run `run_id` on `page` (KEYS.RUNS or KEYS.EVALUATION)."""
    summary = runs.store().summary(run_id)
    choices = _choices(summary)
    if not choices:
        return
    with st.expander("Take it away: notebook, report, model for other runtimes", icon=":material/output:"):
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        choice = left.selectbox("What to make", list(choices), format_func=choices.__getitem__,
                                key=KEYS.CHOICE.format(page))
        if right.button("Make it", icon=":material/build:", key=KEYS.PREPARE.format(page)):
            st.session_state[KEYS.PREPARED.format(page)] = (run_id, choice, _make(summary, choice))
        prepared = st.session_state.get(KEYS.PREPARED.format(page))
        if prepared is None or prepared[0] != run_id or prepared[1] != choice or prepared[2] is None:
            return
        made: Made = prepared[2]
        st.success(md(made.note), icon=":material/check_circle:")
        if made.usage:
            st.caption(f"Load it with {code(made.usage)}")
        columns = st.columns(2)
        columns[0].download_button(f"Download {made.file_name}", made.data, file_name=made.file_name, mime=made.mime,
                                   icon=":material/download:", key=KEYS.DOWNLOAD.format(page))
        if made.extra is not None:
            columns[1].download_button(f"Download {made.extra[0]}", made.extra[1], file_name=made.extra[0],
                                       icon=":material/download:", key=KEYS.DATA.format(page),
                                       help="The data file the notebook reads: put it in the notebook's folder.")


def _make(summary: RunSummary, choice: str) -> Made | None:
    """Make `choice` for the run, under a spinner; None (with the reason shown) when it cannot be made."""
    try:
        if choice == NOTEBOOK:
            with st.spinner("Writing the notebook…"):
                return _notebook(summary.run_id)
        if choice == REPORT:
            with st.spinner("Writing the report (it loads the test images again)…"):
                return _report(summary.run_id)
        return _model(summary, choice)
    except ConvLabError as error:
        show_error(error, "Not made: ")
        return None


def _dataset(run_id: str):
    return runs.dataset_of(runs.store().spec(run_id))


def _notebook(run_id: str) -> Made:
    from core.export.notebook import data_file_bytes, lab_notebook

    store = runs.store()
    ref = store.spec(run_id).dataset
    on_server = ref.kind == "file" or (ref.kind == "images" and not ref.option_dict.get("stored"))
    dataset = _dataset(run_id) if ref.kind == "images" else None
    notebook = lab_notebook(store, run_id, dataset)
    extra = None
    note = "The notebook reproduces the run: run it from a fresh kernel (Restart & Run All) on a CPU."
    if notebook.data_file is not None:
        if on_server:  # data a CLI run read from the server's own files: not handed out to browsers
            note += (f" It reads {notebook.data_file.name} ({notebook.data_file.what}), made from files on the "
                     f"server: whoever runs the server gets it with `python -m core notebook {run_id}`.")
        else:
            extra = (notebook.data_file.name, data_file_bytes(store, notebook.data_file, dataset))
            note += f" It reads {notebook.data_file.name}, below: put it in the notebook's folder."
    return Made(notebook.file_name, notebook.content, "application/x-ipynb+json", note, extra)


def _report(run_id: str) -> Made:
    from core.export.report import run_report

    try:
        dataset = _dataset(run_id)
    except ConvLabError:
        dataset = None  # the report says what it cannot show
    page = run_report(runs.store(), run_id, dataset)
    return Made(f"{run_id}.html", page.encode(), "text/html",
                "One HTML file with everything inside: it opens in any browser without a network, and prints.")


def _model(summary: RunSummary, key: str) -> Made | None:
    from core.export.formats import FORMATS, export_run

    fmt = FORMATS[key]
    if summary.params is not None and summary.params > limits.MAX_EXPORT_PARAMS:
        st.warning(f"This model has {summary.params:,} parameters: the dashboard exports models of up to "
                   f"{limits.MAX_EXPORT_PARAMS:,}. Export it from the command line: "
                   f"{code(f'python -m core export {summary.run_id} --format {key}')}.", icon=":material/info:")
        return None
    slots = _export_slots()
    if not slots.acquire(blocking=False):
        st.info("Another export is being made on this server just now: try again in a few seconds.",
                icon=":material/hourglass:")
        return None
    try:
        with st.spinner(f"Exporting to {fmt.title} and checking it in {fmt.runtime}…"):
            path, check = export_run(runs.store(), summary.run_id, key, dataset=_dataset(summary.run_id))
            data = path.read_bytes()
    finally:
        slots.release()
    note = f"{check.describe()} It takes {check.pixels}; {format_bytes(check.size)}."
    return Made(f"{summary.run_id}{fmt.suffix}", data, "application/octet-stream", note, usage=fmt.use)
