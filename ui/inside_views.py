"""The views of the Inside page: one input layer by layer, what the network learned, what it does with the test set.

Each view renders records that `core.explain` computes; the page composes them.
"""

from __future__ import annotations

import functools
import time

import pandas as pd
import streamlit as st

from core.explain.glossary import EXPLANATIONS
from core.explain.network import Explainer, NetworkTrace
from core.figures import explain as figures
from ui import inside
from ui import inside_inputs as inputs
from ui.errors import guarded
from ui.runs import UsableRun
from ui.state import InsidePage as KEYS
from ui.widgets import code, md, upscale

STAGE_WORDS = {"conv": "convolution", "batch norm": "batch norm", "activation": "activation", "pooling": "pooling"}
TITLES = {"saliency": "Saliency", "gradient x input": "Gradient x input", "grad-cam": "Grad-CAM"}


# --- one input, layer by layer (a fragment: a stroke or a widget here reruns only this part) -------------------


@guarded
def look_inside(run: UsableRun, explainer: Explainer) -> None:
    started = time.perf_counter()
    choices = inputs.source_choices(run)  # it opens on a test image: every view below has something to show
    source = st.radio("Input", choices, format_func=inputs.SOURCE_LABELS.get, horizontal=True, key=KEYS.SOURCE,
                      index=choices.index(inputs.TEST_IMAGE))
    picker, seen = st.columns([3, 2])
    picked = inputs.PICKERS[source](run, picker)
    if picked is None:
        return
    trace = explainer.activations(picked.image)
    names, top = run.dataset.class_names, trace.predicted_class
    seen.image(upscale(picked.image, 140), caption=picked.caption, width=140)
    seen.metric("Prediction", str(names[top]), f"{trace.probabilities[top]:.0%} sure", delta_color="off",
                delta_arrow="off")
    layer = feature_maps(trace)
    arithmetic(explainer, trace, layer)
    attributions(run, explainer, picked, trace)
    st.caption(f"Server time for this input: {(time.perf_counter() - started) * 1000:.0f} ms "
               "(forward pass, gradients, arithmetic and figures).")


def feature_maps(trace: NetworkTrace) -> str:
    st.subheader("Feature maps, block by block")
    names = [info.name for info in trace.layers]
    if st.session_state.get(KEYS.LAYER) not in names:
        st.session_state[KEYS.LAYER] = names[0]
    shape = {info.name: "x".join(str(d) for d in info.output_shape) for info in trace.layers}
    layer = st.selectbox("Layer", names, key=KEYS.LAYER, format_func=lambda n: (
        f"block {trace.layer(n).block} · {trace.layer(n).stage} · {n} → {shape[n]}"))
    info = trace.layer(layer)
    view = inside.explained(STAGE_WORDS[info.stage])
    view.plotly_chart(figures.feature_maps_figure(trace, layer), key=KEYS.MAPS)
    blocks = trace.blocks()
    view.caption(" · ".join(f"block {b}: " + " → ".join(f"{i.name} {shape[i.name]}" for i in infos)
                            for b, infos in blocks.items()) + " (height x width x maps)")
    return layer


def arithmetic(explainer: Explainer, trace: NetworkTrace, layer: str) -> None:
    block = trace.layer(layer).block
    conv = next((i.name for i in trace.layers if i.block == block and i.name in explainer.conv_layers()), None)
    st.subheader(f"One value of {md(conv) if conv else 'a convolution'}, computed")
    if conv is None:
        st.info("This block's convolution is not a plain Conv2D: pick a layer of another block.")
        return
    height, width, filters = trace.feature_maps[conv].shape
    channels = trace.conv_inputs[conv].shape[2]
    inputs.clamp(KEYS.FILTER, 0, filters - 1, 0)
    inputs.follow_strongest(trace.strongest(conv, st.session_state[KEYS.FILTER]))  # not on the blank background
    for key, high, default in ((KEYS.ROW, height - 1, height // 2), (KEYS.COL, width - 1, width // 2),
                               (KEYS.CHANNEL, channels - 1, 0)):
        inputs.clamp(key, 0, high, default)
    cols = st.columns(4)
    f = cols[0].number_input(f"Filter (0 to {filters - 1})", 0, filters - 1, key=KEYS.FILTER)
    row = cols[1].number_input(f"Row (0 to {height - 1})", 0, height - 1, key=KEYS.ROW)
    col = cols[2].number_input(f"Column (0 to {width - 1})", 0, width - 1, key=KEYS.COL)
    channel = cols[3].number_input(f"Input channel (0 to {channels - 1})", 0, channels - 1,
                                   key=KEYS.CHANNEL) if channels > 1 else 0
    a = explainer.conv_arithmetic(trace, conv, int(row), int(col), int(f))
    view = inside.explained("arithmetic")
    view.plotly_chart(figures.conv_location_figure(trace, a, int(channel)), key=KEYS.WHERE,
                      on_select=functools.partial(inputs.select_cell, KEYS.WHERE), selection_mode="points")
    view.plotly_chart(figures.conv_arithmetic_figure(a, int(channel)), key=KEYS.ARITHMETIC)
    k_h, k_w, c_in = a.kernel.shape
    held = float(trace.feature_maps[conv][a.row, a.col, a.filter_index])
    activation = f", then {a.activation}: **{a.result:.4f}**" if a.activation != "linear" else ""
    view.markdown(f"{code(f'{conv}[{a.row}, {a.col}, {a.filter_index}]')} = sum of the {k_h * k_w * c_in} products "
                  f"({k_h}x{k_w}x{c_in}) {a.total:.4f} + bias {a.bias:.4f} = **{a.pre_activation:.4f}**{activation}. "
                  f"The feature map holds **{held:.4f}**.")


def attributions(run: UsableRun, explainer: Explainer, picked: inputs.Picked, trace: NetworkTrace) -> None:
    st.subheader("Which pixels made the decision")
    names, top = run.dataset.class_names, trace.predicted_class
    cls = st.selectbox("Explain the score of", [-1, *range(len(names))], key=KEYS.EXPLAIN_CLASS,
                       format_func=lambda i: f"the predicted class ({names[top]})" if i < 0 else f"class {names[i]}")
    maps = explainer.attributions(picked.image, None if cls < 0 else int(cls))
    view, words = st.columns([3, 1])
    view.plotly_chart(figures.attributions_figure(picked.image, maps), key=KEYS.SALIENCY)
    for key in ("saliency", "gradient x input", "grad-cam"):
        words.caption(f"**{TITLES[key]}.** {EXPLANATIONS[key]}")


# --- what does not depend on the input ----------------------------------------------------------------------


def learned_weights(explainer: Explainer) -> None:
    st.header("What the network learned")
    filters = explainer.filters()
    inside.explained("filters").plotly_chart(figures.filters_figure(filters), key=KEYS.FILTERS)
    inside.explained("weights").plotly_chart(figures.weight_histograms_figure(explainer.weight_histograms()),
                                             key=KEYS.WEIGHTS)


@guarded
def confusion_over_epochs(run: UsableRun) -> None:
    st.subheader("The confusion matrix over the epochs")
    over = inside.confusion_for(run)
    if over is None:
        st.info("This run recorded no confusion matrix per epoch: uploaded models and runs trained without a "
                "validation split have none.", icon=":material/info:")
        return
    names, epochs = run.dataset.class_names, list(over.epochs)
    view = inside.explained("confusion over epochs")
    epoch = view.select_slider("Epoch", epochs, value=epochs[-1], key=KEYS.EPOCH) if len(epochs) > 1 else epochs[0]
    view.plotly_chart(figures.confusion_at_epoch_figure(over, epoch, names), key=KEYS.CONFUSION)
    if len(epochs) < 2:
        view.caption("Only one epoch was recorded: nothing to compare.")
        return
    a, b = view.select_slider("Compare two epochs", epochs, value=(epochs[0], epochs[-1]), key=KEYS.COMPARE)
    mistakes_only = view.toggle("Mistakes only (leave out the diagonal)", key=KEYS.OFF_DIAGONAL)
    changes = over.changes(a, b, top=6, off_diagonal_only=mistakes_only)
    view.markdown(f"**The cells that changed most from epoch {a} to epoch {b}**")
    if not changes:
        view.caption(f"No cell changed from epoch {a} to epoch {b}.")
        return
    view.dataframe(pd.DataFrame([{"true": names[c.true], "predicted": names[c.predicted], f"epoch {a}": c.before,
                                  f"epoch {b}": c.after, "change": c.after - c.before,
                                  "so it got": "better" if (c.true == c.predicted) == (c.after > c.before) else "worse"}
                                 for c in changes]), hide_index=True)
    view.plotly_chart(figures.confusion_change_figure(over, a, b, names), key=KEYS.CONFUSION_CHANGE)
    view.caption("Each cell says how many images it gained or lost. Blue: better (more images read right on the "
                 "diagonal, fewer mistakes off it); red: worse.")


@guarded
def embedding(run: UsableRun, explainer: Explainer) -> None:
    """The test images by their penultimate activations; projected in threads, this part polls until ready."""
    st.subheader("How the network groups the test images")
    if explainer.feature_layer is None:
        st.info("This model has no Dense layer before its output: there is no penultimate layer to project.")
        return
    view = inside.explained("embedding")
    method = view.radio("Projection", ["pca", "tsne"], horizontal=True, key=KEYS.PROJECTION,
                        format_func={"pca": "PCA (instant)", "tsne": "t-SNE (takes seconds)"}.get)
    job = inside.projection(run, explainer, method)
    if job is None:
        if view.button(f"Compute t-SNE of {inside.TSNE_IMAGES:,} test images", key=KEYS.TSNE_START):
            inside.projection(run, explainer, method, start=True)
            st.rerun()  # the whole page, so that this part is drawn again, polling until t-SNE is ready
        return
    done, result, error, seconds = job.outcome()
    if not done:
        view.info(f"Projecting the test images in the background ({seconds:.0f} s so far); the rest of the page "
                  "works meanwhile.", icon=":material/hourglass_top:")
        return
    if error is not None:
        raise error
    if inside.stop_polling():
        st.rerun()  # ready: draw the page again without polling
    names, shown = run.dataset.class_names, result[1]
    event = view.plotly_chart(figures.embedding_figure(shown, names), key=KEYS.EMBEDDING.format(method),
                              on_select="rerun", selection_mode=("points", "box", "lasso"))
    view.caption(f"Computed in {seconds:.1f} s, off the page's thread. Click a point, or draw a box or lasso around "
                 "some, to see their images; crosses are mistakes.")
    chosen = [int(p["customdata"][0]) for p in event.selection.points if p.get("customdata")][:20]
    predicted = dict(zip(shown.indices.tolist(), shown.predicted.tolist()))
    if chosen:
        view.image([upscale(run.dataset.x_test[i], 70) for i in chosen], width=70, clamp=True,
                   caption=[f"{i}: {names[run.dataset.y_test[i]]}→{names[predicted[i]]}" for i in chosen])
