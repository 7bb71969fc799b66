"""The session's view of the run store and the server's job manager.

One `JobManager` per server process (`st.cache_resource`) trains every run
in a worker process; each session only keeps the id of the run it shows.
That id is also in the URL (`?run=<id>`), so a reload, a new tab with the
same link or a restarted browser shows the same run again. When a session
ends, its queued runs are cancelled unless a new session claims them (a
reload does); a running one finishes into the store.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from core.errors import ConvLabError, RunError
from core.model.architecture import layer_table
from core.runs.details import run_details
from core.runs.spec import RunSpec
from core.runs.status import RunState
from core.runs.store import RunSnapshot, RunStore, RunSummary, default_root
from core.training.loop import check_trainable
from ui import state
from ui.state import Phase
from ui.widgets import md

if TYPE_CHECKING:
    import keras

    from core.data.dataset import Dataset
    from core.engine.jobs import JobManager
    from core.evaluation.inference import Predictor
    from core.evaluation.metrics import Evaluation

T = TypeVar("T")
RUN_PARAM = "run"
WORKSPACE_PARAM = "ws"
WORKSPACES_ENV = "CONVLAB_WORKSPACES"  # "shared" (default): one store for everyone; "per-browser": one each
_WORKSPACE = re.compile(r"[0-9a-f]{16}")  # a workspace id: 64 random bits, the only key to its runs


@st.cache_resource(show_spinner=False)
def job_manager() -> "JobManager":
    """The server's job manager: created once per server process, shared by every session.

    A restarted server first marks what the previous one left queued or training as interrupted.
    (Imported here: pages read runs through `core.runs` and never import the process machinery.)
    """
    from core.engine.jobs import JobManager

    manager = JobManager()
    manager.adopt(RunStore(default_root()))
    return manager


@dataclass
class SessionLease:
    """Held for as long as a browser session lives; its release tells the job manager."""

    owner: str
    manager: "JobManager"
    session_state: Any = None  # the session's own state (Streamlit's SafeSessionState), emptied once it is gone
    session_id: str = ""


FORGET_AFTER_S = 30.0  # a dropped connection back within this keeps the session's state (a closed tab never is)
_forgetting: dict[str, threading.Timer] = {}
_forgetting_lock = threading.Lock()


def _release(lease: SessionLease) -> None:
    """The session's connection has gone (its tab closed, or the network dropped): its queue places go and
    what only it held in the server's memory is dropped; its own state is emptied FORGET_AFTER_S later
    unless it comes back. Streamlit keeps a closed session's state for reconnects, and in fact until another
    session disconnects (streamlit#6166): the datasets and models it refers to would stay in memory as long."""
    from ui.loading import release_session

    lease.manager.release_owner(lease.owner)
    release_session(lease.owner)
    if lease.session_state is not None:
        timer = threading.Timer(FORGET_AFTER_S, _forget, args=(lease.session_id, lease.session_state))
        timer.daemon = True
        with _forgetting_lock:
            _forgetting[lease.session_id] = timer
        timer.start()


def _forget(session_id: str, session_state: Any) -> None:
    """The session has not come back: its state goes, and the files its uploaders hold (Streamlit keeps an
    upload's bytes in memory until the session is shut down, which waits as its state does)."""
    from streamlit import runtime

    with _forgetting_lock:
        if _forgetting.pop(session_id, None) is None:
            return  # it came back
    state.empty(session_state)
    if runtime.exists():
        runtime.get_instance().uploaded_file_mgr.remove_session_files(session_id)


def _came_back(session_id: str) -> None:
    """A session whose connection dropped is back: its state stays."""
    with _forgetting_lock:
        timer = _forgetting.pop(session_id, None)
    if timer is not None:
        timer.cancel()


@st.cache_resource(scope="session", on_release=_release, show_spinner=False)
def _session_lease(owner: str) -> SessionLease:
    manager = job_manager()
    manager.hold_owner(owner)  # a new session, or one back after a disconnect released it: its runs stay queued
    context = get_script_run_ctx()
    if context is None:
        return SessionLease(owner, manager)
    _came_back(context.session_id)
    return SessionLease(owner, manager, context.session_state, context.session_id)


def where_runs_train() -> str:
    """Where this server's runs execute, in words: this machine's training processes, or a Ray cluster."""
    return job_manager().describe()


def placement_line(run_id: str) -> str:
    """Which cluster nodes trained a run ("" for one trained on the server's machine)."""
    placed = store().placement(run_id)
    if not placed:
        return ""
    nodes = [f"{'the head' if p.get('head') else 'node'} {p.get('ip', '')} ({str(p.get('node', ''))[:8]})"
             for p in placed]
    return "Trained on the cluster: " + ", then ".join(nodes) + "."


def warm_up() -> None:
    """Pages near a training call this: a spare training process imports TensorFlow in the background."""
    job_manager().warm_up()


def hold_session() -> None:
    """Call on every script run and poll: a session that ends (or disconnects) lets its queued runs go."""
    _session_lease(state.owner())


def per_browser_workspaces() -> bool:
    return os.environ.get(WORKSPACES_ENV, "shared") == "per-browser"


def workspace() -> str:
    """This browser's workspace key, kept in its URL (?ws=): the runs it makes are its own.

    With CONVLAB_WORKSPACES=per-browser it also names the browser's own run store; on the shared store
    it marks the runs it makes, which only it may label or delete.
    """
    key = st.query_params.get(WORKSPACE_PARAM, "")
    if not _WORKSPACE.fullmatch(key):  # from the URL: only a key of ours ever becomes a path or an owner
        key = st.session_state.get(state.WORKSPACE) or secrets.token_hex(8)
        st.query_params[WORKSPACE_PARAM] = key
    st.session_state[state.WORKSPACE] = key
    return key


def store() -> RunStore:
    """This session's run store: the shared one, or this browser's own workspace."""
    key, root = workspace(), default_root()
    return RunStore(root / "workspaces" / key) if per_browser_workspaces() else RunStore(root)


# --- the current run ----------------------------------------------------------------------------------


def reader_for(run_id: str):
    """A cheap incremental reader of `run_id` (kept per session)."""
    return state.per_run(state.RunCache.READER, run_id, lambda: store().reader(run_id))


def snapshot() -> RunSnapshot | None:
    """The session's current run as it is now, or None (no run, or it vanished: `vanished()` then says which)."""
    run_id = state.current_run_id()
    if run_id is None:
        return None
    try:
        if not store().exists(run_id):  # its folder is gone (deleted on disk): its last rows mean nothing now
            raise RunError(f"run {run_id} no longer exists")
        return reader_for(run_id).snapshot()
    except RunError:
        set_current_run(None)
        st.session_state[state.VANISHED_RUN] = run_id
        return None


def vanished() -> str | None:
    """The id of the session's current run if it vanished from the store (deleted on disk), to say so."""
    return st.session_state.get(state.VANISHED_RUN)


def queue_position(run_id: str) -> int | None:
    return job_manager().position(run_id)


def set_current_run(run_id: str | None) -> None:
    """Show `run_id` in this session (and claim it, so its queue place is kept)."""
    if run_id != state.current_run_id():
        state.forget_run_caches()
    st.session_state[state.CURRENT_RUN] = run_id
    if run_id is not None:
        st.session_state[state.VANISHED_RUN] = None
    job_manager().claim(run_id, state.owner())


def attach_from_url() -> None:
    """Before the page: a ?run= the session has not seen yet becomes its current run (a reload, a link)."""
    wanted = st.query_params.get(RUN_PARAM)
    if not wanted or wanted == st.session_state[state.URL_RUN]:
        return
    st.session_state[state.URL_RUN] = wanted
    if wanted == state.current_run_id():
        return
    if not store().exists(wanted):
        st.toast(f"There is no run {md(wanted[:40])} here (it may have been deleted).", icon=":material/warning:")
        return
    try:
        store().spec(wanted)
    except RunError as error:  # a damaged run: say so rather than show nothing
        st.toast(f"Run {md(wanted)} cannot be opened: {md(error)}", icon=":material/warning:")
        return
    problem = use_run(wanted)
    if problem:
        st.toast(md(problem), icon=":material/warning:")
    apply_run_settings(wanted)


def sync_url() -> None:
    """After the page: the URL names the current run, so a reload comes back to it."""
    run_id = state.current_run_id()
    if run_id is not None and st.query_params.get(RUN_PARAM) != run_id:
        st.query_params[RUN_PARAM] = run_id
    st.session_state[state.URL_RUN] = run_id


def dataset_of(spec: RunSpec) -> "Dataset":
    """The dataset a run was trained on, loaded again from its reference (raises DataError)."""
    from ui.loading import dataset_for_ref

    return dataset_for_ref(spec.dataset, str(store().root))


def use_run(run_id: str) -> str | None:
    """Make `run_id` the session's current run, with its dataset; returns a problem to show, or None."""
    set_current_run(run_id)
    try:
        spec = store().spec(run_id)
        state.set_dataset(dataset_of(spec), str(store().root))
    except ConvLabError as error:
        return f"Its dataset could not be loaded again: {error}"
    st.session_state[state.DATASET_CHOICE] = data_page_choice(spec.dataset)
    return None


def data_page_choice(ref) -> str:
    """The Data page's choice that shows a run's dataset (and keeps it, rather than loading another)."""
    if ref.kind == "builtin":
        return "mnist" if ref.name == "mnist-10k" else ref.name
    return state.CHOICE_IMAGES if ref.kind == "images" else state.CHOICE_NPZ


def apply_run_settings(run_id: str) -> str | None:
    """Put a run's architecture and training settings into the sliders; returns a problem, or None."""
    from ui.architecture_form import load_into_widgets as load_architecture
    from ui.training_form import load_into_widgets as load_training

    try:
        spec = store().spec(run_id)
    except RunError as error:
        return str(error)
    if spec.architecture is None or spec.training is None:
        return "This run is an uploaded model: it has no slider settings."
    st.session_state[state.ARCHITECTURE] = spec.architecture
    load_architecture(spec.architecture, overwrite=True)
    st.session_state[state.TRAIN_CONFIG] = spec.training
    load_training(spec.training, overwrite=True)
    dataset = state.dataset()
    if dataset is not None:
        try:
            table = layer_table(spec.architecture, dataset.input_shape, dataset.num_classes)
        except ConvLabError:
            return None
        st.session_state[state.BUILT] = state.BuiltArchitecture(spec.architecture, dataset.input_shape,
                                                                dataset.num_classes, table)
    return None


# --- starting and stopping ------------------------------------------------------------------------------


def start_training() -> None:
    """Start button callback: queue a run of the built architecture with the settings on the page."""
    st.session_state[state.START_ERROR] = None
    current = snapshot()
    if current is not None and current.state.is_active:
        st.session_state[state.START_ERROR] = "A run is already going: stop it first (one training at a time)."
        return
    dataset, built = state.dataset(), state.built()
    if dataset is None or built is None:
        st.session_state[state.START_ERROR] = "Load a dataset and build a model first."
        return
    if dataset.ref is None:
        st.session_state[state.START_ERROR] = "This dataset cannot be loaded again by a training process; reload it."
        return
    try:
        config = state.training_config().validated()
        params = check_trainable(built.arch, dataset.input_shape, dataset.num_classes, config)
    except ConvLabError as error:
        st.session_state[state.START_ERROR] = str(error)
        return
    spec = RunSpec(dataset.ref, built.arch, config, label=default_label(built.arch.name, config), origin="dashboard")
    try:
        run_id = job_manager().submit(store(), spec, run_details(dataset, params), owner=state.owner(),
                                      made_by=workspace())
    except (ConvLabError, OSError) as error:
        st.session_state[state.START_ERROR] = f"Could not create the run: {error}"
        return
    set_current_run(run_id)
    st.session_state[state.RUN_PHASE] = queued_phase(run_id)


def default_label(arch_name: str, config) -> str:
    from core.training.config import OPTIMIZER_NAMES

    return f"{arch_name} · {OPTIMIZER_NAMES[config.optimizer]} {config.learning_rate:g} · {config.epochs} ep"


# --- what Evaluation and Draw need of a usable run -------------------------------------------------------


@dataclass(frozen=True)
class UsableRun:
    """A run with weights, and the dataset it was trained on."""

    snapshot: RunSnapshot
    dataset: "Dataset"

    @property
    def run_id(self) -> str:
        return self.snapshot.run_id

    @property
    def name(self) -> str:
        spec = self.snapshot.spec
        return spec.architecture.name if spec.architecture is not None else (self.snapshot.label or "uploaded model")


def usable_run() -> tuple[UsableRun | None, str | None]:
    """The current run if it has weights, with its dataset; else (None, why not or None)."""
    current = snapshot()
    if current is None or not current.usable:
        return None, None
    try:
        dataset = dataset_of(current.spec)
    except ConvLabError as error:
        return None, f"The dataset of run {current.run_id} cannot be loaded again: {error}"
    return UsableRun(current, dataset), None


def usable_run_or_say(nothing_yet: str) -> UsableRun | None:
    """The current usable run; else None, with why shown: its dataset's problem, or `nothing_yet`."""
    run, problem = usable_run()
    if problem:
        st.error(md(problem), icon=":material/error:")
    elif run is None and vanished():
        say_vanished()
    elif run is None:
        st.info(nothing_yet, icon=":material/info:")
    return run


def say_vanished() -> None:
    """The page's message when the session's run was deleted under it."""
    st.warning(f"Run `{vanished()}` no longer exists: it was deleted from the run store. Pick another run on "
               "**Runs**, or train one.", icon=":material/delete:")


def deletion_refused(summary: RunSummary) -> str:
    """Why this browser may not delete `summary`'s run now, or "" when it may."""
    if not summary.editable_by(workspace()):
        return "it was made in another browser (only its maker may delete it)"
    return job_manager().in_use(summary.run_id, state.owner())


def shared_for_run(what: str, run: UsableRun, make: Callable[[], T], estimate: int = 0,
                   size: Callable[[T], int] = lambda value: 0) -> T:
    """`make()` for the run's saved model, once per server (every session showing the run shares it).

    Kept in the server's memory under the model file and its time, held by this session, and counted
    against the memory budget (`estimate` before, `size` after).
    """
    from ui.loading import server_memory

    path = store().model_path(run.run_id)
    key = (what, str(path.resolve()), path.stat().st_mtime_ns)
    return server_memory().get(key, state.owner(), make, estimate=estimate, size=size,
                               what=f"the model of run {run.run_id}")


def model_for(run: UsableRun) -> "keras.Model":
    """The run's saved model, loaded once per server in safe mode."""
    from core.model.files import load_model_file

    path = store().model_path(run.run_id)
    return shared_for_run("model", run, lambda: load_model_file(path), estimate=2 * path.stat().st_size,
                          size=lambda model: 4 * int(model.count_params()))


def predictor_for(run: UsableRun) -> "Predictor":
    """The run's model as a fast predictor, warmed once per server when a page first needs it (its first stroke
    on the canvas is then as quick as the next)."""
    from core.evaluation.inference import Predictor

    return shared_for_run("predictor", run, lambda: Predictor(model_for(run)).warmed())


def evaluation_for(run: UsableRun) -> "Evaluation":
    """The test-set evaluation: the training process's, or computed here once (uploaded models)."""
    from core.evaluation.metrics import Evaluation

    def make() -> "Evaluation":
        probabilities = store().test_probabilities(run.run_id)
        data = run.dataset
        if probabilities is None or probabilities.shape != (len(data.y_test), data.num_classes):
            from core.engine.scoring import evaluate_into

            evaluate_into(store(), run.run_id, model_for(run), data)
            probabilities = store().test_probabilities(run.run_id)
        return Evaluation(probabilities, data.y_test, data.class_names)

    return state.per_run(state.RunCache.EVALUATION, run.run_id, make)


def taken_back(run_id: str) -> bool:
    """The server still has the run (training, or queued to resume), whatever its folder says: its process went
    away (a cluster node lost) and the server is resuming it from its last checkpoint."""
    manager = job_manager()
    return manager.is_running(run_id) or manager.position(run_id) is not None


ENDING_S = 2.0  # a run's last epoch with this little left by its pace (or its pace not known yet) is ending


def phase(current: RunSnapshot | None) -> Phase:
    """Where a run is, as the pollers care (see `Phase`). A poller reruns the page when it changes (`phase_changed`)."""
    if current is None:
        return Phase.ENDED
    if not current.state.is_active:  # (a run whose node was lost is taken back: still followed)
        return Phase.TRAINING if current.state is RunState.INTERRUPTED and taken_back(current.run_id) else Phase.ENDED
    if current.state is RunState.QUEUED:
        return queued_phase(current.run_id)
    p = current.status.progress
    if not p.epoch:
        return Phase.STARTING
    if (current.state is RunState.STOPPING or p.step_done >= p.epochs * p.batches_per_epoch
            or p.epoch == p.epochs and (p.eta_s is None or p.eta_s <= ENDING_S)):  # (pace unknown: it may be)
        return Phase.ENDING
    return Phase.TRAINING


def queued_phase(run_id: str) -> Phase:
    """STARTING once `run_id` is out of the queue or first in it with a training slot free; NEXT while it is first
    and every slot is busy; WAITING while others are ahead of it."""
    position = queue_position(run_id)
    if position is None or position == 1 and len(job_manager().running()) < job_manager().max_concurrent:
        return Phase.STARTING
    return Phase.NEXT if position == 1 else Phase.WAITING


END_WAIT_S = 1.0  # an ending run's poller waits this long at most for its end, then draws the progress again


def await_end(run_id: str, within: float = END_WAIT_S) -> bool:
    """For an ending run's poller, once it has drawn the run: wait here for the run's end (its final status,
    written by its worker), at most `within` seconds or until the user asks for something (a click, another
    page); whether it ended.

    The poller then draws the end as soon as it is written instead of at its next poll, and meanwhile neither
    the server nor the browser spends CPU on refreshes: the worker's end (validating, saving, scoring the test
    set) has the machine. The wait costs no CPU: the job manager wakes it when a job ends (`JobManager.wait_until`).
    """
    runs_store = store()
    asked = []

    def ended_or_asked() -> bool:
        if _user_asked():
            asked.append(True)
            return True
        try:
            return not runs_store.raw_status(run_id).state.is_active
        except (RunError, OSError):
            return True  # gone: the next poll says so

    return job_manager().wait_until(ended_or_asked, within) and not asked


def _user_asked() -> bool:
    """Whether this session asked for a rerun or a stop while its script waits (a click, another page); a
    fragment's timer does not count. Streamlit has no public call for it: read defensively, so that without
    it a wait only ends at its bound."""
    requests = getattr(get_script_run_ctx(), "script_requests", None)
    asked = getattr(getattr(requests, "_state", None), "value", "CONTINUE")
    return asked == "STOP" or asked == "RERUN" and not getattr(getattr(requests, "_rerun_data", None),
                                                                  "is_auto_rerun", False)


def phase_changed(current: RunSnapshot | None) -> tuple[Phase, Phase]:
    """For pollers: the run's phase when last seen and now (remembered from now on)."""
    before, now = st.session_state[state.RUN_PHASE], phase(current)
    st.session_state[state.RUN_PHASE] = now
    return before, now
