"""Stage 4 · Evaluation: how the trained model does on test images it has never seen."""

import pandas as pd
import streamlit as st

from core.figures.evaluation import confidence_histogram, confusion_heatmap
from core.figures.training import history_curves
from ui import runs, state
from ui.bootstrap import page_setup
from ui.exports import take_away
from ui.runs import UsableRun
from ui.state import EvaluationPage as KEYS
from ui.state import TakeAway
from ui.widgets import code, image_grid, md

page_setup()

st.title("4 · Evaluation")


def show_evaluation(run: UsableRun) -> None:
    data = run.dataset
    with st.spinner(f"Classifying {len(data.x_test):,} test images…"):
        result = runs.evaluation_for(run)
    names = data.class_names

    cols = st.columns(4)
    cols[0].metric("Test accuracy", f"{result.accuracy:.2%}", help="sklearn.metrics.accuracy_score(y_test, y_pred)")
    cols[1].metric("Test loss", f"{result.loss:.4f}", help="mean sparse categorical cross-entropy")
    cols[2].metric("Test images", f"{len(result.y_true):,}")
    cols[3].metric("Mistakes", f"{int((~result.correct).sum()):,}")
    st.caption(f"{code(run.name)} (run `{run.run_id}`, {run.snapshot.state.value}) on {md(data.summary_line())}. "
               "y_pred is the argmax of the softmax output.")

    history = run.snapshot.history()
    if history:
        st.subheader("Training and validation curves")
        st.plotly_chart(history_curves(history, title=""))
        st.caption("Training accuracy far above validation accuracy means over-fitting; curves still climbing at "
                   "the last epoch mean more epochs would help.")

    st.subheader("Confusion matrix")

    def _select_cell() -> None:
        points = st.session_state[KEYS.CONFUSION].selection.points
        if points:
            st.session_state[KEYS.TRUE_CLASS] = names.index(str(points[0]["y"]))
            st.session_state[KEYS.PREDICTED_CLASS] = names.index(str(points[0]["x"]))

    normalized = st.toggle("Row-normalised (share of each true class)", key=KEYS.NORMALIZED)
    st.plotly_chart(confusion_heatmap(result.confusion(normalize=normalized), names, normalized), key=KEYS.CONFUSION,
                    on_select=_select_cell, selection_mode="points")
    st.caption("Click a cell (or pick the classes below) to see its test images; it opens on the mistake the model "
               "makes most.")
    left, right = st.columns(2)
    true_class, pred_class = result.largest_confusion()  # the first look: the mistake the model makes most
    state.first_values(run.run_id, KEYS.CELL_OF, {KEYS.TRUE_CLASS: true_class, KEYS.PREDICTED_CLASS: pred_class})
    true_class = left.selectbox("True class", range(len(names)), format_func=names.__getitem__, key=KEYS.TRUE_CLASS)
    pred_class = right.selectbox("Predicted class", range(len(names)), format_func=names.__getitem__,
                                 key=KEYS.PREDICTED_CLASS)
    cell = result.cell(true_class, pred_class)
    st.markdown(f"**{len(cell)} test image(s)** of class *{md(names[true_class])}* predicted as *{md(names[pred_class])}*"
                + (" (showing the first 40)" if len(cell) > 40 else ""))
    image_grid([data.x_test[i] for i in cell[:40]], [f"{result.confidence[i]:.0%}" for i in cell[:40]])

    st.subheader("Per-class precision, recall and F1")
    st.dataframe(pd.DataFrame(result.per_class()), hide_index=True, column_config={
        key: st.column_config.NumberColumn(format="%.3f") for key in ("precision", "recall", "f1")})

    st.subheader("The most confident mistakes")
    wrong = result.misclassified(limit=30)
    image_grid([data.x_test[i] for i in wrong],
               [f"{names[result.y_true[i]]} → {names[result.y_pred[i]]} ({result.confidence[i]:.0%})" for i in wrong])
    st.caption("Caption: true class → predicted class (confidence).")

    st.plotly_chart(confidence_histogram(result.confidence, result.correct))
    st.page_link("pages/draw.py", label="Draw a digit and classify it", icon=":material/draw:")
    st.page_link("pages/inside.py", label="Look inside the network: why did it say that?", icon=":material/visibility:")


run = runs.usable_run_or_say("Nothing to evaluate yet: train a model on **Training** first (a stopped run counts "
                             "too), or pick one on **Runs**.")
if run is not None:
    show_evaluation(run)
    take_away(run.run_id, TakeAway.EVALUATION)
