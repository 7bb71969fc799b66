"""Stage 2 · Architecture: shape the CNN with sliders, see every layer, build it."""

import pandas as pd
import streamlit as st

from core.errors import ArchitectureError
from core.model.architecture import PRESET_DESCRIPTIONS, PRESETS, layer_table
from ui import runs, state
from ui.architecture_form import apply_preset, architecture_form
from ui.bootstrap import page_setup
from ui.widgets import code, md, show_error

page_setup()

st.title("2 · Architecture")
runs.warm_up()  # a training process imports TensorFlow while the user sets things up

dataset = state.dataset()
if dataset is None:
    input_shape, num_classes = (28, 28, 1), 10
    st.info("No dataset loaded yet: shapes below assume MNIST (28x28x1, 10 classes). "
            "Load data on the **Data** page before building.", icon=":material/info:")
else:
    input_shape, num_classes = dataset.input_shape, dataset.num_classes
    st.caption(f"Input {input_shape[0]}x{input_shape[1]}x{input_shape[2]} from {md(dataset.name)}, {num_classes} classes.")

st.markdown("**Start from a preset**")
for column, name in zip(st.columns(len(PRESETS)), PRESETS):
    column.button(name, key=state.ArchitecturePage.PRESET.format(name), on_click=apply_preset, args=(name,),
                  help=PRESET_DESCRIPTIONS[name], width="stretch")

sliders, summary = st.columns([1, 1], gap="medium")
with sliders:
    arch = architecture_form()

with summary:
    st.subheader(f"Layers of {code(arch.name)}")
    try:
        table = layer_table(arch, input_shape, num_classes)
    except ArchitectureError as error:
        show_error(error, "This architecture cannot be built: ")
        table = None
    else:
        st.dataframe(pd.DataFrame(table.as_records()), hide_index=True, width="stretch",
                     height=35 * (len(table.rows) + 1) + 3,
                     column_config={"parameters": st.column_config.NumberColumn(format="localized")})
        st.markdown(f"**Total parameters: {table.total_params:,}**")

    if st.button("Build", type="primary", icon=":material/construction:",
                 disabled=table is None or dataset is None, key=state.ArchitecturePage.BUILD):
        # the layer table already checked and counted everything: training builds the Keras model itself
        st.session_state[state.BUILT] = state.BuiltArchitecture(arch, input_shape, num_classes, table)

    built = state.built()
    if built is not None:
        if (built.arch, built.input_shape) == (arch, input_shape):
            st.success(f"Built {code(built.arch.name)}: {built.params:,} parameters, checked layer by layer. "
                       "Next: **Training**.", icon=":material/check_circle:")
            st.page_link("pages/training.py", label="Go to Training", icon=":material/arrow_forward:")
        else:
            st.info(f"The session holds the earlier build {code(built.arch.name)} ({built.params:,} parameters); "
                    "press **Build** to replace it with what the sliders show.", icon=":material/info:")
