"""The tray's presenter: daemon state in, a plain menu model out. Pure: no toolkit, no I/O, no clock.

Everything shown is a function of ``(views, info, now)`` rounded to the minute, so two calls within the
same minute and the same state give equal models, and the view rebuilds the menu only when they differ
(a rebuild closes a menu the person has open on some desktops).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from broker.core.remote import RemoteUse
from broker.core.state import (
    STATE_ERROR,
    STATE_OK,
    STATE_SIGN_IN_REQUIRED,
    STATE_SIGNING_IN,
    STATE_UNKNOWN,
    ProfileView,
)

# Icon states, one shape each (see icons.py).
ICON_OK = "ok"
ICON_SIGN_IN = "sign_in"
ICON_ERROR = "error"
ICON_BUSY = "busy"
ICON_IDLE = "idle"
ICON_STATES = (ICON_OK, ICON_SIGN_IN, ICON_ERROR, ICON_BUSY, ICON_IDLE)

# Action ids the view maps to the Actions protocol.
SIGN_IN = "sign_in"
SIGN_OUT = "sign_out"
REFRESH = "refresh"
SIGN_IN_ALL = "sign_in_all"
TOGGLE_AUTOSTART = "toggle_autostart"
OPEN_LOGS = "open_logs"
QUIT = "quit"

# Windows truncates tooltips at 127 characters; keep every platform to that.
TOOLTIP_MAX = 127
# Warn this long before a token that cannot be refreshed silently stops working.
DEADLINE_WARNING = 10 * 60
# Profiles a "Sign in to all" signs in (the same choice as `kubetray login`).
NEEDS_SIGN_IN = (STATE_SIGN_IN_REQUIRED, STATE_ERROR, STATE_UNKNOWN)


@dataclass(frozen=True)
class Item:
    """One menu entry. ``submenu`` set: opens a submenu; ``action`` None: a label; ``separator``: a line."""

    label: str = ""
    action: str | None = None
    arg: str | None = None
    enabled: bool = True
    checked: bool | None = None  # None: not a checkbox
    submenu: tuple[Item, ...] | None = None
    separator: bool = False


SEPARATOR = Item(separator=True)


@dataclass(frozen=True)
class TrayInfo:
    """What the tray shows besides the profiles. ``autostart`` None: not available here (see the note)."""

    version: str
    keyring: str
    socket: str
    log_dir: str
    autostart: bool | None = None
    autostart_note: str = ""
    tray_note: str = ""
    # profile key → the kubeconfig contexts that use it (pairs, so the model stays hashable and comparable)
    contexts: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Recent use through a forwarded socket (most recent first) and the local-only profile keys.
    remote: tuple[RemoteUse, ...] = ()
    local_only: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrayModel:
    icon: str
    tooltip: str
    menu: tuple[Item, ...]


@dataclass(frozen=True)
class Notice:
    """A notification to show once. ``kind`` names the event, for tests and de-duplication."""

    kind: str
    key: str
    title: str
    message: str


# -- text --------------------------------------------------------------------------------------------
def who(view: ProfileView) -> str:
    """The name a person recognises: the account, else the tenant and sign-in host."""
    if view.account:
        return view.account
    host = urlsplit(view.authority).hostname or view.authority
    tenant = view.tenant_id or urlsplit(view.authority).path.strip("/").split("/")[0]
    return f"{tenant} at {host}" if tenant else host


def expires_text(expires_on: float, now: float) -> str:
    """"expires in 42 min", minute-granular so the text changes at most once a minute."""
    left = expires_on - now
    if left <= 0:
        return "expired"
    minutes = int(left // 60)
    if minutes < 1:
        return "expires in under a minute"
    if minutes < 120:
        return f"expires in {minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"expires in {hours} h {minutes} min"
    return f"expires in {hours // 24} days"


def status_text(view: ProfileView, now: float) -> str:
    if view.state == STATE_SIGNING_IN:
        return "signing in…"
    if view.state == STATE_SIGN_IN_REQUIRED:
        return "sign-in required"
    if view.state == STATE_ERROR:
        if view.expires_on is not None and view.expires_on > now:
            return f"refresh failing, {expires_text(view.expires_on, now)}"
        return "refresh failing"
    if view.state == STATE_OK and view.expires_on is not None:
        return expires_text(view.expires_on, now)
    return "not checked yet"


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- the model ---------------------------------------------------------------------------------------
def icon_state(views: Sequence[ProfileView]) -> str:
    """The most urgent state wins: signing in, then sign-in needed, then error, then all signed in."""
    states = {v.state for v in views}
    for state, icon in ((STATE_SIGNING_IN, ICON_BUSY), (STATE_SIGN_IN_REQUIRED, ICON_SIGN_IN),
                        (STATE_ERROR, ICON_ERROR), (STATE_OK, ICON_OK)):
        if state in states:
            return icon
    return ICON_IDLE


def tooltip(views: Sequence[ProfileView], now: float) -> str:
    icon = icon_state(views)
    if icon == ICON_IDLE:
        text = "no profiles yet" if not views else "starting"
    elif icon == ICON_OK:
        ok = [v.expires_on or now for v in views if v.state == STATE_OK]
        plural = "s" if len(ok) != 1 else ""
        text = f"signed in ({len(ok)} profile{plural}), {expires_text(min(ok), now)}"
    else:
        wanted = {ICON_BUSY: STATE_SIGNING_IN, ICON_SIGN_IN: STATE_SIGN_IN_REQUIRED, ICON_ERROR: STATE_ERROR}[icon]
        names = [who(v) for v in _ordered(views) if v.state == wanted]
        verb = {ICON_BUSY: "signing in", ICON_SIGN_IN: "sign-in needed", ICON_ERROR: "refresh failing"}[icon]
        text = f"{verb}: {', '.join(names)}"
    return _short(f"kubetray: {text}", TOOLTIP_MAX)


def _ordered(views: Iterable[ProfileView]) -> list[ProfileView]:
    # A stable order, so an unchanged state gives an equal model whatever order the service lists.
    return sorted(views, key=lambda v: (who(v).lower(), v.key))


def ago_text(then: float, now: float) -> str:
    """"3 min ago", minute-granular like expires_text."""
    minutes = int(max(0.0, now - then) // 60)
    if minutes < 1:
        return "just now"
    if minutes < 120:
        return f"{minutes} min ago"
    return f"{minutes // 60} h ago"


# Remote uses listed in the menu; status shows all the daemon keeps.
REMOTE_SHOWN = 5


def remote_item(uses: Sequence[RemoteUse], names: Mapping[str, str], now: float) -> Item | None:
    """"Remote use" submenu: host (as the remote shim named it), profile, when; None when there was none."""
    if not uses:
        return None
    lines = []
    for use in uses[:REMOTE_SHOWN]:
        outcome = " (refused: local-only)" if use.refused else ""
        if use.count > 1:
            outcome += f", {use.count} calls"
        profile = names.get(use.profile, use.profile)
        lines.append(Item(_short(f"{use.origin} via {use.via}: {profile}, {ago_text(use.at, now)}{outcome}", 90),
                          enabled=False))
    latest = uses[0]
    return Item(_short(f"Remote use: {latest.origin}, {ago_text(latest.at, now)}", 60), submenu=tuple(lines))


def profile_item(view: ProfileView, now: float, contexts: Sequence[str] = (), local_only: bool = False) -> Item:
    details = [
        Item(f"Account: {view.account or 'not signed in'}", enabled=False),
        Item(f"Tenant: {view.tenant_id}" if view.tenant_id else f"Authority: {view.authority}", enabled=False),
        Item(f"Server app: {view.server_id}", enabled=False),
    ]
    if contexts:
        details.append(Item(_short(f"Contexts: {', '.join(contexts)}", 90), enabled=False))
    details.append(Item(status_text(view, now).capitalize(), enabled=False))
    if local_only:
        details.append(Item("Local-only: refused to ssh hosts", enabled=False))
    if view.last_error and view.state in (STATE_ERROR, STATE_SIGN_IN_REQUIRED):
        details.append(Item(f"Problem: {_short(view.last_error, 90)}", enabled=False))
    can_refresh = view.state in (STATE_OK, STATE_ERROR)
    actions = (
        Item("Sign in", SIGN_IN, view.key),
        Item("Sign out", SIGN_OUT, view.key, enabled=view.state != STATE_SIGNING_IN),
        Item("Refresh now", REFRESH, view.key, enabled=can_refresh),
    )
    label = _short(f"{who(view)} — {status_text(view, now)}", 80)
    return Item(label, submenu=(*details, SEPARATOR, *actions))


def about_item(info: TrayInfo) -> Item:
    lines = [f"kubetray {info.version}", f"Keyring: {info.keyring}", f"Socket: {info.socket}"]
    if info.tray_note:
        lines.append(f"Tray: {info.tray_note}")
    return Item("About kubetray", submenu=tuple(Item(line, enabled=False) for line in lines))


def build(views: Sequence[ProfileView], info: TrayInfo, now: float) -> TrayModel:
    """The whole tray for this state: icon, tooltip and menu."""
    ordered = _ordered(views)
    contexts = dict(info.contexts)
    if ordered:
        local_only = set(info.local_only)
        profiles = tuple(profile_item(v, now, contexts.get(v.key, ()), v.key in local_only) for v in ordered)
    else:
        profiles = (Item("No profiles yet: run kubectl once", enabled=False),)
    remote = remote_item(info.remote, {v.key: who(v) for v in ordered}, now)
    autostart_label = "Start at login" if info.autostart is not None else (
        f"Start at login ({info.autostart_note})" if info.autostart_note else "Start at login (unavailable)")
    menu = (
        *profiles,
        *((remote,) if remote is not None else ()),
        SEPARATOR,
        Item("Sign in to all", SIGN_IN_ALL, enabled=any(v.state in NEEDS_SIGN_IN for v in ordered)),
        SEPARATOR,
        Item(autostart_label, TOGGLE_AUTOSTART, checked=bool(info.autostart), enabled=info.autostart is not None),
        Item("Open log folder", OPEN_LOGS),
        about_item(info),
        SEPARATOR,
        Item("Quit kubetray", QUIT),
    )
    return TrayModel(icon=icon_state(ordered), tooltip=tooltip(ordered, now), menu=menu)


# -- notifications -------------------------------------------------------------------------------------
def notices(before: Mapping[str, ProfileView], after: Sequence[ProfileView], now: float) -> list[Notice]:
    """What changed between two snapshots that a person should hear about (each event once)."""
    out: list[Notice] = []
    for view in _ordered(after):
        prev = before.get(view.key)
        prev_state = prev.state if prev is not None else None
        name = who(view)
        if view.state == STATE_SIGN_IN_REQUIRED and prev_state not in (STATE_SIGN_IN_REQUIRED, STATE_SIGNING_IN):
            # From "signing in" the person already knows (they were at it); a failed sign-in is reported
            # by whoever started it.
            out.append(Notice("sign_in_required", view.key, "Sign-in required",
                              f"{name}: sign in again to keep kubectl working. "
                              "Choose Sign in from the kubetray menu or run `kubetray login`."))
        elif view.state == STATE_OK and prev_state in (STATE_SIGNING_IN, STATE_SIGN_IN_REQUIRED):
            expiry = f"; the token {expires_text(view.expires_on, now)}" if view.expires_on else ""
            out.append(Notice("signed_in", view.key, "Signed in", f"Signed in as {name}{expiry} "
                              "and is refreshed automatically."))
        elif view.state == STATE_ERROR and prev_state != STATE_ERROR:
            reason = view.last_error or "the identity provider did not answer"
            out.append(Notice("refresh_failing", view.key, "Refresh failing",
                              _short(f"{name}: {reason}", 200)))
    return out


def deadline_notices(
    views: Sequence[ProfileView], now: float, warned: frozenset[tuple[str, float]]
) -> tuple[list[Notice], frozenset[tuple[str, float]]]:
    """Warn once per token when it will stop working soon and cannot be refreshed silently.

    Returns the notices and the new ``warned`` set (pass it back next time). A token in state OK is
    about to be refreshed by the scheduler, so only failing or sign-in-required tokens warn.
    """
    out: list[Notice] = []
    keep = {w for w in warned if w[1] > now}  # forget tokens that have expired
    for view in _ordered(views):
        if view.expires_on is None or view.state not in (STATE_ERROR, STATE_SIGN_IN_REQUIRED):
            continue
        left = view.expires_on - now
        mark = (view.key, view.expires_on)
        if 0 < left <= DEADLINE_WARNING and mark not in keep:
            keep.add(mark)
            out.append(Notice("deadline", view.key, "kubectl access ends soon",
                              f"{who(view)}: the token {expires_text(view.expires_on, now)} and kubetray cannot "
                              "extend it without you. Sign in from the kubetray menu or run `kubetray login`."))
    return out, frozenset(keep)
