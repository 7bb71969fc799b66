"""ConvLab's four stages as plain Python: data, architecture, training, evaluation.

Nothing in this package imports Streamlit, so it runs from the dashboard,
the command line (`python -m core`) and the tests alike. TensorFlow is
imported lazily by the modules that need it.
"""
