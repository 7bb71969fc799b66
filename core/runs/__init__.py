"""A run: one training as plain data and as files.

    spec.py     what to train, as plain data any process or machine can run
    status.py   a run's state (one vocabulary, end to end) and who owns it
    store.py    the run store: every file of a run is read and written here
    writer.py   writing a run's record while it trains
    logs.py     the metrics logs (CSV, one complete line per write)
    details.py  what a run records of its data and model
    compare.py  comparing runs
"""
