"""The scripted person's web browser: opens a sign-in URL and does what the test asked.

Launched by MSAL through ``webbrowser`` with ``BROWSER="<python> <abs path>/browser.py %s &"``; the
trailing ``&`` makes Python's webbrowser start it in the background, so MSAL's redirect listener is
already serving when the form is posted back. Standard library only, so it starts fast.

Environment:
  TEST_BROWSER_LOG      append one line per launch: host and path of the URL (never the query,
                        which carries state, PKCE challenge and nonce)
  TEST_BROWSER_CONTROL  file holding the behaviour: ``approve`` (default), ``ignore`` (the person
                        walks away), ``deny`` (the person cancels: error=access_denied is posted)
  REQUESTS_CA_BUNDLE / SSL_CERT_FILE  the CA bundle that trusts the test authority
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser

_TIMEOUT = 10.0


class FormParser(HTMLParser):
    """Collects the first form's action, method and hidden inputs (feed it a page, then read them)."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.method = "get"
        self.fields: dict[str, str] = {}
        self._in_form = False
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and not self._done:
            self._in_form = True
            self.action = values.get("action")
            self.method = values.get("method", "get").lower()
        elif tag == "input" and self._in_form and values.get("type", "").lower() == "hidden":
            self.fields[values.get("name", "")] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._in_form:
            self._in_form, self._done = False, True


def _log_launch(url: str) -> None:
    path = os.environ.get("TEST_BROWSER_LOG")
    if not path:
        return
    parts = urllib.parse.urlsplit(url)
    # One write with O_APPEND: parallel launches cannot interleave their lines.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{parts.netloc}{parts.path}\n".encode())
    finally:
        os.close(fd)


def _behaviour() -> str:
    path = os.environ.get("TEST_BROWSER_CONTROL")
    if not path:
        return "approve"
    try:
        with open(path, encoding="utf-8") as file:
            return file.read().strip().lower() or "approve"
    except FileNotFoundError:
        return "approve"


def _opener() -> urllib.request.OpenerDirector:
    cafile = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    context = ssl.create_default_context(cafile=cafile)
    # No proxies: both the authority and MSAL's listener are on loopback.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))


def run(url: str) -> int:
    """Visit ``url`` as the scripted person; return a process exit status."""
    _log_launch(url)
    behaviour = _behaviour()
    if behaviour == "ignore":
        return 0
    opener = _opener()
    with opener.open(url, timeout=_TIMEOUT) as response:  # noqa: S310 - the URL is the sign-in page
        page = response.read().decode("utf-8", "replace")
    form = FormParser()
    form.feed(page)
    if not form.action or form.method != "post":
        print(f"browser.py: no form to post on {urllib.parse.urlsplit(url).path}", file=sys.stderr)
        return 1
    fields = form.fields
    if behaviour == "deny":
        fields = {
            "error": "access_denied",
            "error_description": "AADSTS65004: User declined to consent to access the app.",
            **({"state": form.fields["state"]} if "state" in form.fields else {}),
        }
    data = urllib.parse.urlencode(fields).encode("ascii")
    request = urllib.request.Request(  # noqa: S310 - posts back to the app's loopback redirect
        form.action, data=data, headers={"Content-Type": "application/x-www-form-urlencoded"}, method="POST"
    )
    try:
        with opener.open(request, timeout=_TIMEOUT) as response:
            response.read()
    except urllib.error.HTTPError as error:
        # MSAL's listener answers an error response with 400; the post itself was delivered.
        if behaviour != "deny":
            print(f"browser.py: redirect answered {error.code}", file=sys.stderr)
            return 1
    return 0


def main() -> None:
    """Entry point: ``browser.py URL``."""
    if len(sys.argv) != 2:
        print("usage: browser.py URL", file=sys.stderr)
        sys.exit(2)
    try:
        sys.exit(run(sys.argv[1]))
    except OSError as error:
        print(f"browser.py: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
