"""Take a run away: the lab notebook, a run report, models that work outside ConvLab, classifying from the CLI.

    keras_code.py  a run as plain Keras and NumPy code: its data, its model, its recipe
    notebook.py    the lab notebook (nbformat) that reproduces a run, and the data file it reads
    report.py      one self-contained HTML report of a run (plotly inline, printable)
    formats.py     the model as .keras, SavedModel, ONNX and LiteRT, taking raw pixels; each checked when made
    cli.py         `python -m core notebook|report|export|classify RUN ...`

The packages behind the exports (nbformat, onnxruntime, ai-edge-litert, ...) are imported inside the
functions that need them, never when this package is imported.
"""
