"""Inside the network: feature maps, a convolution's arithmetic, filters, saliency, confusion over epochs and
an embedding of the test set, for the current run's model on a chosen input."""

import streamlit as st

from ui import inside, runs
from ui.bootstrap import page_setup
from ui.inside_views import confusion_over_epochs, embedding, learned_weights, look_inside
from ui.widgets import code, md

page_setup()

st.title("Inside the network")

run = runs.usable_run_or_say("Nothing to look inside yet: train a model on **Training** (a stopped run counts "
                             "too), or pick one on **Runs**.")
if run is not None:
    explainer, why = inside.explainer_for(run)
    if explainer is None:
        st.info(md(why), icon=":material/info:")
    else:
        st.caption(f"{code(run.name)} (run `{run.run_id}`) on {md(run.dataset.summary_line())}. Pick an input; every view "
                   "below is computed from one forward pass of it.")
        st.fragment(look_inside)(run, explainer)
        learned_weights(explainer)
        st.header("What it does with the test set")
        st.fragment(confusion_over_epochs)(run)
        st.fragment(embedding, run_every=1.0 if inside.start_and_poll(run, explainer) else None)(run, explainer)
