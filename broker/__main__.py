"""``python -m broker`` is ``kubetray``."""

from broker.cli import main

main()
