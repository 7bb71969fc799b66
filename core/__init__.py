"""ConvLab's core: plain Python (no Streamlit), usable from the dashboard, a script, the CLI and the tests.

One package per stage of the lab and per step of a run's life:

    data/        stage 1: datasets (registry, files, image folders, pictures, drawings), splits, statistics
    model/       stage 2: architectures, augmentation, building them in Keras, model files
    training/    stage 3: the recipe, the training loop, its callbacks and progress
    evaluation/  stage 4: test metrics, fast single-image prediction
    explain/     inside the network: feature maps, attributions, embeddings, confusion over epochs
    figures/     plotly figures for every stage
    runs/        a run as data (spec, status) and as files (the run store)
    engine/      executing runs: one run from its spec, the worker processes, the job queue
    export/      taking a run away: the lab notebook, the run report, the model for other runtimes
    sweeps/      many runs of one study (Optuna): what varies, the driver that asks, runs, prunes and tells

and the rules every package shares: `limits` (every size limit), `checks`
(every setting's check), `errors`, `atomic` (crash-safe writes), `settings`.
"""
