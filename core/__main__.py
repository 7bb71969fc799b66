"""Entry point for `python -m core`: training (core.cli), a subcommand that takes a run away (core.export.cli),
or a sweep (core.sweeps.cli).

Every command prints only its own lines: TensorFlow's start-up log is kept out unless `--verbose` is given
(`core.console`).
"""

import sys

from core.console import quiet_tensorflow

argv = quiet_tensorflow(sys.argv[1:])

if argv and argv[0] in ("notebook", "report", "export", "classify"):  # core.export.cli.COMMANDS
    from core.export.cli import main as export_main

    sys.exit(export_main(argv))
if argv and argv[0] == "sweep":
    from core.sweeps.cli import main as sweep_main

    sys.exit(sweep_main(argv[1:]))

from core.cli import main  # noqa: E402

sys.exit(main(argv))
