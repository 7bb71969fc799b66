"""What the Runs page does with runs: use one, apply its settings, label, download, delete, compare, upload one."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from core.engine.upload import submit_upload
from core.errors import ConvLabError
from core.figures.training import compare_curves
from core.limits import format_bytes
from core.runs.compare import comparison_csv, spec_differences
from core.runs.status import RunState
from core.runs.store import RunSummary
from ui import run_control, runs, state
from ui.exports import take_away
from ui.state import RunControl, TakeAway
from ui.state import RunsPage as KEYS
from ui.widgets import md, show_error


def one_run(summary: RunSummary, summaries: list[RunSummary]) -> None:
    """Actions on one selected run: use it, apply its settings, pause, resume or continue it, label, download,
    delete."""
    store = runs.store()
    st.subheader(md(summary.label or summary.run_id))
    st.caption(f"`{summary.run_id}` · {summary.state.value}: {md(summary.message)}")
    run_control.lineage(summary.run_id, summaries)
    placed = runs.placement_line(summary.run_id)
    if placed:
        st.caption(md(placed))
    run_control.said()
    if summary.state is RunState.RUNNING:
        why = run_control.refused(summary.run_id)
        st.button("Pause", icon=":material/pause:", key=RunControl.PAUSE.format(RunControl.RUNS),
                  on_click=run_control.pause, args=(summary.run_id,), disabled=bool(why),
                  help=f"Not here: {why}." if why else "It checkpoints at its next batches and frees its training "
                                                       "slot for the queue; Resume goes on from that very batch.")
    elif not summary.state.is_active:
        run_control.resume_or_continue(summary.run_id, summary.state, RunControl.RUNS)
    use, apply_, _ = st.columns([1, 1, 2])
    if use.button("Use this run", icon=":material/check:", disabled=not summary.has_model or summary.state.is_active,
                  help="Make it the session's model: Evaluation and Draw & classify then work on it.",
                  key=KEYS.USE):
        problem = runs.use_run(summary.run_id)
        if problem:
            st.error(md(problem), icon=":material/error:")
    current = runs.snapshot()
    if current is not None and current.run_id == summary.run_id:  # said on every rerun, not only after the click
        st.success("It is now the current run: open **Evaluation** or **Draw & classify**.", icon=":material/check:")
    if apply_.button("Apply its settings", icon=":material/tune:", disabled=summary.origin == "upload",
                     help="Put its architecture and training settings into the sliders, to change one thing and "
                          "train again.", key=KEYS.APPLY):
        problem = runs.apply_run_settings(summary.run_id)
        if problem:
            st.error(md(problem), icon=":material/error:")
        else:
            st.success("The sliders on **Architecture** and **Training** now hold this run's settings.")

    mine = summary.editable_by(runs.workspace())
    label = st.text_input("Label", value=summary.label, max_chars=200, key=KEYS.LABEL.format(summary.run_id),
                          disabled=not mine, help=None if mine else "Made in another browser: only its maker "
                          "may relabel it.")
    if mine and label != summary.label:
        store.set_label(summary.run_id, label)
        st.rerun()

    downloads = st.columns(3)
    if summary.has_model:
        downloads[0].download_button("Model (.keras)", data=store.model_bytes(summary.run_id),
                                     file_name=f"{summary.run_id}.keras", icon=":material/download:")
    if summary.state is not RunState.DAMAGED:
        downloads[1].download_button("Spec (.json)", data=json.dumps(store.spec_file(summary.run_id), indent=1),
                                     file_name=f"{summary.run_id}.json", mime="application/json",
                                     icon=":material/download:")
    take_away(summary.run_id, TakeAway.RUNS)
    delete(summary)


def delete(summary: RunSummary) -> None:
    refused = runs.deletion_refused(summary)
    if refused or st.session_state.get(KEYS.CONFIRM_DELETE) != summary.run_id:
        if st.button("Delete…", icon=":material/delete:", disabled=bool(refused), key=KEYS.DELETE,
                     help=f"Not now: {refused}." if refused else "Asks for confirmation"):
            st.session_state[KEYS.CONFIRM_DELETE] = summary.run_id
            st.rerun()
        if refused:
            st.caption(f"Cannot be deleted now, as {refused}.")
        return
    st.warning(f"Delete run **{md(summary.label or summary.run_id)}** and all its files (model, metrics)? "
               "This cannot be undone.", icon=":material/warning:")
    yes, no, _ = st.columns([1, 1, 3])
    if yes.button("Delete it", type="primary", key=KEYS.DELETE_YES):
        st.session_state[KEYS.CONFIRM_DELETE] = None
        try:  # (asked again by the store: it refuses an active run, whatever the page saw)
            runs.store().delete(summary.run_id)
        except ConvLabError as error:
            show_error(error)
            return
        if state.current_run_id() == summary.run_id:
            runs.set_current_run(None)
        st.rerun()
    if no.button("Keep it", key=KEYS.DELETE_NO):
        st.session_state[KEYS.CONFIRM_DELETE] = None
        st.rerun()


def compare(summaries: list[RunSummary]) -> None:
    """Two or more runs: their curves overlaid, the settings that differ, their test accuracies."""
    store = runs.store()
    usable = [s for s in summaries if s.state is not RunState.DAMAGED]
    st.subheader(f"Comparing {len(usable)} runs")
    labels = [s.label or s.run_id for s in usable]
    st.plotly_chart(compare_curves([(label, store.epochs(s.run_id)) for label, s in zip(labels, usable)]),
                    key=KEYS.COMPARE)
    st.caption("Solid: training; dotted: validation. One colour per run.")
    scores = st.columns(len(usable))
    for column, label, summary in zip(scores, labels, usable):
        column.metric(md(label[:40]), "—" if summary.test_accuracy is None else f"{summary.test_accuracy:.2%}",
                      help="test accuracy (accuracy_score on the test set)")
    differences = spec_differences([store.spec(s.run_id) for s in usable])
    if differences:
        st.markdown("**What differs between them**")
        st.dataframe(pd.DataFrame({"setting": list(differences)} | {
            label: [str(values[i]) for values in differences.values()] for i, label in enumerate(labels)}),
            hide_index=True)
    else:
        st.caption("Their specs are identical: differences come from chance alone (none, with the same seed).")
    st.download_button("Comparison (.csv)", comparison_csv(store, [s.run_id for s in usable]),
                       file_name="convlab-comparison.csv", mime="text/csv",
                       icon=":material/download:")


def upload_model() -> None:
    """Bring your own model: a .keras file, loaded in safe mode, checked against the current dataset."""
    dataset = state.dataset()
    with st.expander("Bring your own model (.keras)", icon=":material/upload:"):
        if dataset is None:
            st.info("Load the dataset it was trained for on **Data** first: the model must fit its images.")
            return
        st.caption(f"A Keras 3 `.keras` file taking {'x'.join(map(str, dataset.input_shape))} images and predicting "
                   f"{dataset.num_classes} classes (the current dataset, {md(dataset.name)}); at most "
                   f"{st.get_option('server.maxUploadSize')} MB. It is checked here without being loaded (its layers, "
                   "its size against the same limits as a model built on **Architecture**, its fit with the dataset), "
                   "then a training process loads it in Keras' safe mode (nothing in the file runs; Lambda layers are "
                   "refused) and scores it on the test set.")
        upload = st.file_uploader("Model file", type=["keras"], key=KEYS.MODEL_UPLOAD)
        if upload is None:
            return
        if st.session_state.get(KEYS.MODEL_UPLOAD_ID) != upload.file_id:  # each file is checked once
            st.session_state[KEYS.MODEL_UPLOAD_ID] = upload.file_id
            st.session_state[KEYS.MODEL_UPLOAD_SAID] = check_upload(upload.name, upload.getvalue(), dataset)
        # (said on every rerun while the file is there: a run that starts at once reruns the page)
        run_id, said = st.session_state[KEYS.MODEL_UPLOAD_SAID]
        if run_id is None:
            st.error(said, icon=":material/error:")
            return
        st.success(said, icon=":material/check_circle:")
        st.page_link("pages/training.py", label="Follow it on Training", icon=":material/arrow_forward:")


def check_upload(name: str, data: bytes, dataset) -> tuple[str | None, str]:
    """Check an uploaded model and queue its scoring: (its run id, what to say), or (None, why it was refused)."""
    try:
        run_id = submit_upload(runs.job_manager(), runs.store(), data, name, dataset, owner=state.owner(),
                               made_by=runs.workspace())
    except ConvLabError as error:
        return None, f"Refused: {md(error)}"
    runs.set_current_run(run_id)
    st.session_state[state.RUN_PHASE] = runs.queued_phase(run_id)
    return run_id, (f"{md(name)} passed the checks and is now run `{run_id}`: a training process loads and scores it "
                    "(follow it on **Training**), then **Evaluation** and **Draw & classify** work on it.")


def store_usage() -> None:
    """What the run store holds, against the uploads' quota; this browser's unused uploads can be deleted."""
    from core.runs.uploads import upload_quota

    store = runs.store()
    usage = store.usage()
    quota = upload_quota()
    with st.expander(f"What the store holds: {usage.runs:,} run{'s' if usage.runs != 1 else ''} "
                     f"({format_bytes(usage.run_bytes)}), uploads "
                     f"{format_bytes(usage.upload_bytes)} of {format_bytes(quota)}", icon=":material/storage:"):
        st.progress(min(1.0, usage.upload_bytes / quota))
        st.caption("Uploaded datasets and model files count against the store's quota; an upload past it is refused "
                   "before anything is written. Each uploaded dataset is kept once, however many runs use it.")
        if usage.uploads:
            st.dataframe(pd.DataFrame([{
                "file": upload.name, "size": format_bytes(upload.size),
                "runs made on it": len(usage.upload_users.get(upload.digest, [])),
                "uploaded here": runs.workspace() in upload.uploaded_by,
            } for upload in usage.uploads]), hide_index=True)
        mine = usage.unused(runs.workspace())
        if mine and st.button(f"Delete my {len(mine)} unused upload{'s' if len(mine) != 1 else ''} "
                              f"({format_bytes(sum(u.size for u in mine))})", key=KEYS.CLEAN_UPLOADS,
                              icon=":material/delete_sweep:", help="Uploads this browser made that no run uses."):
            for upload in mine:
                store.uploads.remove(upload.digest, upload.suffix)
            st.rerun()
