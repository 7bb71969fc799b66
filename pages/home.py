"""Home: what ConvLab does, in four stages. Imports no TensorFlow, so it opens fast."""

import streamlit as st

from ui.bootstrap import page_setup
from ui.runs import per_browser_workspaces, where_runs_train
from ui.widgets import md

page_setup()

st.title("ConvLab")
st.markdown(
    "Build an image classifier end to end, the way a classic deep-learning lab does it, "
    "and watch every step happen."
)

STAGES = [
    ("pages/data.py", ":material/dataset:", "1 · Load and preprocess the images",
     "Pick MNIST (or Fashion-MNIST, CIFAR-10, your own .npz). Pixels are scaled to [0, 1] "
     "and a channel axis is added: (N, 28, 28) becomes (N, 28, 28, 1)."),
    ("pages/architecture.py", ":material/account_tree:", "2 · Define the CNN",
     "Convolution, ReLU, pooling, flatten, dense, softmax: set each layer with sliders and see "
     "the output shapes and parameter counts change as you go."),
    ("pages/training.py", ":material/model_training:", "3 · Train it",
     "The lab's recipe is one click away (SGD, learning rate 0.01, momentum 0.9, 10 epochs, "
     "batch 32). Accuracy and loss stream live; training keeps going while you look around."),
    ("pages/evaluation.py", ":material/analytics:", "4 · Estimate its performance",
     "Accuracy on unseen test images (scikit-learn's accuracy_score), the confusion matrix, "
     "the curves, the mistakes. Then draw a digit and watch the model read it."),
]

for page, icon, title, text in STAGES:
    with st.container(border=True):
        st.page_link(page, label=title, icon=icon)
        st.caption(text)

st.info("The sidebar always shows where you are: which data, which model, how training goes.",
        icon=":material/info:")
st.caption(f":material/memory: **Where trainings run:** {md(where_runs_train())}. Teachers: start the server with "
           "`CONVLAB_RAY_ADDRESS` naming a Ray cluster to train on the lab's machines (README, \"Beyond one "
           "machine\").")

if per_browser_workspaces():
    st.caption(":material/person: **Your own workspace.** This server gives each browser a workspace of its own: "
               "only this browser sees the runs it makes. The address bar holds its key (`?ws=`): keep the link to "
               "come back to your runs from another tab or computer.")
else:
    st.caption(":material/groups: **One run store for everyone.** Everyone using this server sees every run; the "
               "runs you make carry this browser's key (`?ws=` in the address bar), and only you can relabel or "
               "delete them. Teachers: start the server with `CONVLAB_WORKSPACES=per-browser` to give each "
               "student's browser a workspace of its own.")
