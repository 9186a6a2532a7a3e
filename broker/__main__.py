"""``python -m broker`` is ``kubetray``."""

import sys

if sys.argv[1:] == ["run", "--detach"]:
    # How a shim starts the daemon (shim/spawn.py), and the first kubectl waits for it: skip building
    # the CLI's parser and importing its commands.
    from broker.process.daemon import run

    sys.exit(run(detach=True))

from broker.cli.main import main

main()
