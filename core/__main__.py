"""Entry point for `python -m core`: training (core.cli), a subcommand that takes a run away (core.export.cli),
or a sweep (core.sweeps.cli)."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the CLI

if len(sys.argv) > 1 and sys.argv[1] in ("notebook", "report", "export", "classify"):  # core.export.cli.COMMANDS
    from core.export.cli import main as export_main

    sys.exit(export_main(sys.argv[1:]))
if len(sys.argv) > 1 and sys.argv[1] == "sweep":
    from core.sweeps.cli import main as sweep_main

    sys.exit(sweep_main(sys.argv[2:]))

from core.cli import main  # noqa: E402

sys.exit(main())
