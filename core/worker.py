"""`python -m core.worker`: one training process of the job manager (see core.engine.Worker).

It imports TensorFlow first and says {"event": "ready"}, so the start-up cost
is paid while it waits. Then it takes one {"cmd": "run", "root": ..., "run_id": ...},
trains that run into the store and exits (a fresh process per run: whatever
TensorFlow keeps is given back). {"cmd": "stop"} ends the run within a chunk of
batches; a closed stdin means the server has gone: the run stops, keeps its
weights and is marked interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading


def emit(event: str, **fields: object) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def listen(stop) -> None:
    """Read commands until stdin closes; a closed stdin means the server has gone."""
    from core.engine import SERVER_GONE

    for line in sys.stdin:
        try:
            command = json.loads(line)
        except ValueError:
            continue
        if command.get("cmd") == "stop":
            stop.set("user")
    stop.set(SERVER_GONE)


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when we stop, through stdin
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras  # noqa: F401 - the slow import, paid before any job arrives
    import tensorflow as tf

    tf.constant(0.0) + 1.0  # start TensorFlow's runtime (thread pools, devices) before the job too
    from core.engine import StopFlag, execute
    from core.runs import RunStore

    emit("ready", pid=os.getpid())
    line = sys.stdin.readline()
    if not line:
        return 0
    job = json.loads(line)
    store = RunStore(job["root"])
    run_id = job["run_id"]
    stop = StopFlag()
    threading.Thread(target=listen, args=(stop,), daemon=True).start()
    emit("started", run_id=run_id)
    state = execute(store, run_id, stop)
    emit("ended", run_id=run_id, state=state.value)
    return 0


if __name__ == "__main__":
    sys.exit(main())
