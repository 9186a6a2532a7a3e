"""kubetray's exec credential plugin (standard library only; never imports the broker)."""

# The interpreter that has the broker installed, for starting the daemon. The fast launcher sets it:
# it runs the shim on the base interpreter (a venv's interpreter starts measurably slower), which
# cannot import the broker itself. None: this interpreter (the console script's).
DAEMON_PYTHON: "str | None" = None
