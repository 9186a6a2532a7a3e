"""The scripted person's browser for a real OpenID Provider: keeps cookies and walks its pages.

From the authorization (or device verification) URL it follows redirects, fills each form it meets
(login: the test user and any password; consent and device confirmation: submit as is) and stops
when a form posts to the app's loopback listener (MSAL's ``form_post`` redirect) or a page has no
form left (the device flow's "you may close this window"). Standard library only, so it starts
fast when MSAL launches it through ``BROWSER="<python> <abs path>/oidc_browser.py %s &"``.

Environment:
  TEST_BROWSER_LOG    append one line per launch: host and path of the URL (never the query)
  TEST_BROWSER_LOGIN  the login typed into the provider's sign-in form (default alice@example.test)
  REQUESTS_CA_BUNDLE / SSL_CERT_FILE  the CA bundle that trusts the provider
"""

from __future__ import annotations

import http.cookiejar
import os
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser

_TIMEOUT = 10.0
_MAX_PAGES = 10
DEFAULT_LOGIN = "alice@example.test"
_LOOPBACK = ("localhost", "127.0.0.1", "[::1]")


class Form(HTMLParser):
    """The first form of a page: action, method and every named input with its value."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.method = "get"
        self.fields: dict[str, str] = {}
        self.kinds: dict[str, str] = {}
        self._in_form = False
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and not self._done:
            self._in_form = True
            self.action = values.get("action", "")
            self.method = values.get("method", "get").lower()
        elif tag == "input" and self._in_form and values.get("name"):
            self.fields[values["name"]] = values.get("value", "")
            self.kinds[values["name"]] = values.get("type", "text").lower()

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._in_form:
            self._in_form, self._done = False, True


def _log_launch(url: str) -> None:
    path = os.environ.get("TEST_BROWSER_LOG")
    if not path:
        return
    parts = urllib.parse.urlsplit(url)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)  # one write: no interleaving
    try:
        os.write(fd, f"{parts.netloc}{parts.path}\n".encode())
    finally:
        os.close(fd)


def _opener() -> urllib.request.OpenerDirector:
    cafile = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    context = ssl.create_default_context(cafile=cafile)
    return urllib.request.build_opener(
        urllib.request.ProxyHandler({}),  # provider and listener are both on loopback
        urllib.request.HTTPSHandler(context=context),
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
    )


def _fill(form: Form, login: str) -> dict[str, str]:
    fields = dict(form.fields)
    for name, kind in form.kinds.items():
        if kind == "password":
            fields[name] = "any-password"  # the provider's development sign-in checks only the login
        elif kind in ("text", "email") and not fields[name]:
            fields[name] = login
    return fields


def run(url: str, login: str | None = None) -> int:
    """Sign in at ``url`` as the scripted person; return a process exit status."""
    _log_launch(url)
    login = login or os.environ.get("TEST_BROWSER_LOGIN") or DEFAULT_LOGIN
    opener = _opener()
    request: urllib.request.Request | str = url
    for _ in range(_MAX_PAGES):
        with opener.open(request, timeout=_TIMEOUT) as response:  # noqa: S310 - the provider's pages
            page, where = response.read().decode("utf-8", "replace"), response.geturl()
        form = Form()
        form.feed(page)
        if form.action is None:
            return 0  # nothing left to submit: the device flow's success page
        action = urllib.parse.urljoin(where, form.action)
        data = urllib.parse.urlencode(_fill(form, login)).encode("ascii")
        request = urllib.request.Request(  # noqa: S310
            action, data=data, headers={"Content-Type": "application/x-www-form-urlencoded"}, method="POST")
        if urllib.parse.urlsplit(action).hostname in _LOOPBACK and action.startswith("http://"):
            try:
                with opener.open(request, timeout=_TIMEOUT) as response:  # the app's redirect listener
                    response.read()
            except urllib.error.HTTPError as error:
                print(f"oidc_browser.py: redirect answered {error.code}", file=sys.stderr)
                return 1
            return 0
    print("oidc_browser.py: too many pages without reaching the app", file=sys.stderr)
    return 1


def main() -> None:
    """Entry point: ``oidc_browser.py URL``."""
    if len(sys.argv) != 2:
        print("usage: oidc_browser.py URL", file=sys.stderr)
        sys.exit(2)
    try:
        sys.exit(run(sys.argv[1]))
    except OSError as error:
        print(f"oidc_browser.py: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
