"""Executing runs: one run from its spec, in worker processes, through a queue.

    execute.py   train one run from its spec in this process (a worker, the CLI, a test), into the store
    protocol.py  the messages between the server and a worker process, defined once for both ends
    worker.py    `python -m core.engine.worker`: a process that trains run after run
    process.py   the server's end of one worker process
    local.py     the local pool: where runs execute on this machine
    queue.py     the queued runs and whose session still wants each
    sessions.py  which browser sessions are open
    jobs.py      the job manager a server holds: queue, sessions and executor under one lock
    upload.py    an uploaded model becomes a finished run
"""
