"""kubetray's exec credential plugin (standard library only; never imports the broker)."""

# The interpreter that has the broker installed, for starting the daemon. The fast launcher sets it:
# it runs the shim on the base interpreter (a venv's interpreter starts measurably slower), which
# cannot import the broker itself. None: this interpreter (the console script's).
DAEMON_PYTHON: "str | None" = None

# True in the single-file shim built for ssh hosts (`kubetray remote shim`): there the daemon runs on
# the desktop and is reached through a forwarded socket, so the shim never tries to start one.
REMOTE = False
