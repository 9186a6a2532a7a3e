"""Stand-ins for the CLIs kubetray runs for some login modes (``az``, ``azd``).

Each is a Python script in a directory of its own that logs its arguments to ``<name>.log`` beside it and,
once a file named ``logged-out`` is there, fails with the real CLI's message; otherwise it runs ``body``.
A test puts the directory on kubectl's PATH (or an exec.env PATH) and reads the log.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HEAD = '''#!{python}
"""{doc}"""
import datetime, json, os, ssl, sys, time, urllib.parse, urllib.request
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "{name}.log"), "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
if os.path.exists(os.path.join(here, "logged-out")):
    sys.stderr.write({logged_out!r} + "\\n")
    sys.exit(1)
'''

AZ_LOGGED_OUT = "ERROR: Please run 'az login' to setup account."
AZD_LOGGED_OUT = "ERROR: fetching token: not logged in, run `azd auth login` to login"


def client_credentials(client_id: str, secret: str, server_id: str, token_url: str) -> str:
    """Script lines that get a real client-credentials token from a test authority into ``reply``."""
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
            "scope": f"{server_id}/.default"}
    return (f"form = urllib.parse.urlencode({form!r}).encode()\n"
            'ctx = ssl.create_default_context(cafile=os.environ["REQUESTS_CA_BUNDLE"])\n'
            f"with urllib.request.urlopen({token_url!r}, form, context=ctx) as r:\n"
            "    reply = json.load(r)\n")


def install(directory: Path, name: str, *, doc: str, logged_out: str, body: str) -> Path:
    """Write the stand-in ``directory/name`` (executable) and return ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / name
    script.write_text(_HEAD.format(python=sys.executable, doc=doc, name=name, logged_out=logged_out) + body)
    script.chmod(0o755)
    return directory
