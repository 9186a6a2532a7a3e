"""``python -m broker`` is ``kubetray``."""

from broker.cli.main import main

main()
