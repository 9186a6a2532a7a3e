"""The tray presenter: daemon state → menu model, icon and tooltip; and which notifications to show."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from broker.core.state import ProfileView
from broker.tray import presenter
from broker.tray.presenter import (
    ICON_BUSY,
    ICON_ERROR,
    ICON_IDLE,
    ICON_OK,
    ICON_SIGN_IN,
    Item,
    TrayInfo,
)

NOW = 1_800_000_000.0
INFO = TrayInfo(version="9.8.7", keyring="SecretService Keyring", socket="/run/user/1000/kubetray/kubetray.sock",
                log_dir="/home/a/.local/state/kubetray/log", autostart=False)


def view(key: str = "k1", state: str = "ok", *, account: str = "alice@contoso.example",
         expires_in: float | None = 42 * 60 + 30, last_error: str = "", tenant: str = "tenant-a") -> ProfileView:
    return ProfileView(
        key=key, login="interactive", authority=f"https://login.example.test/{tenant}", tenant_id=tenant,
        client_id="client-1", server_id="server-1", account=account, state=state,
        expires_on=None if expires_in is None else NOW + expires_in, last_refresh=NOW - 60, last_error=last_error,
    )


def labels(items: tuple[Item, ...]) -> list[str]:
    return [i.label for i in items if not i.separator]


def find(items: tuple[Item, ...], label: str) -> Item:
    for item in items:
        if item.label == label:
            return item
    raise AssertionError(f"no item {label!r} in {labels(items)}")


# -- icon and tooltip ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("state", "icon", "tip"), [
    ("ok", ICON_OK, "kubetray: signed in (1 profile), expires in 42 min"),
    ("sign_in_required", ICON_SIGN_IN, "kubetray: sign-in needed: alice@contoso.example"),
    ("error", ICON_ERROR, "kubetray: refresh failing: alice@contoso.example"),
    ("signing_in", ICON_BUSY, "kubetray: signing in: alice@contoso.example"),
    ("unknown", ICON_IDLE, "kubetray: starting"),
])
def test_each_state_has_its_icon_and_a_tooltip_that_says_it(state: str, icon: str, tip: str) -> None:
    model = presenter.build([view(state=state)], INFO, NOW)
    assert model.icon == icon
    assert model.tooltip == tip


def test_no_profiles_shows_the_idle_icon_and_says_how_profiles_appear() -> None:
    model = presenter.build([], INFO, NOW)
    assert model.icon == ICON_IDLE
    assert model.tooltip == "kubetray: no profiles yet"
    first = model.menu[0]
    assert first.label == "No profiles yet: run kubectl once" and not first.enabled
    assert not find(model.menu, "Sign in to all").enabled


@pytest.mark.parametrize(("states", "icon"), [
    (("ok", "error"), ICON_ERROR),
    (("ok", "error", "sign_in_required"), ICON_SIGN_IN),
    (("ok", "error", "sign_in_required", "signing_in"), ICON_BUSY),
    (("ok", "unknown"), ICON_OK),
])
def test_the_most_urgent_state_decides_the_icon(states: tuple[str, ...], icon: str) -> None:
    views = [view(key=f"k{i}", state=s, account=f"u{i}@x.example") for i, s in enumerate(states)]
    assert presenter.icon_state(views) == icon


def test_the_tooltip_fits_windows_limit_however_many_profiles_need_sign_in() -> None:
    views = [view(key=f"k{i}", state="sign_in_required", account=f"someone.with.a.long.name{i}@contoso.example")
             for i in range(30)]
    tip = presenter.build(views, INFO, NOW).tooltip
    assert len(tip) <= presenter.TOOLTIP_MAX
    assert tip.startswith("kubetray: sign-in needed: someone.with.a.long.name0@contoso.example")
    assert tip.endswith("…")


# -- the profile entry ---------------------------------------------------------------------------------
def test_a_signed_in_profile_shows_account_tenant_expiry_and_its_three_actions() -> None:
    entry = presenter.build([view()], INFO, NOW).menu[0]
    assert entry.label == "alice@contoso.example — expires in 42 min"
    assert entry.submenu is not None
    assert labels(entry.submenu) == [
        "Account: alice@contoso.example", "Tenant: tenant-a", "Server app: server-1", "Expires in 42 min",
        "Sign in", "Sign out", "Refresh now",
    ]
    details = [i for i in entry.submenu if i.label.startswith(("Account", "Tenant", "Server", "Expires"))]
    assert all(not i.enabled and i.action is None for i in details)
    actions = {i.label: i for i in entry.submenu if i.action}
    assert {(i.action, i.arg, i.enabled) for i in actions.values()} == {
        ("sign_in", "k1", True), ("sign_out", "k1", True), ("refresh", "k1", True),
    }


def test_a_profile_needing_sign_in_says_so_names_the_tenant_and_cannot_be_refreshed() -> None:
    v = view(state="sign_in_required", account="", expires_in=None, last_error="AADSTS70043: the refresh token "
             "has expired due to inactivity.")
    entry = presenter.build([v], INFO, NOW).menu[0]
    assert entry.label == "tenant-a at login.example.test — sign-in required"
    assert entry.submenu is not None
    assert "Account: not signed in" in labels(entry.submenu)
    assert "Problem: AADSTS70043: the refresh token has expired due to inactivity." in labels(entry.submenu)
    assert not find(entry.submenu, "Refresh now").enabled
    assert find(entry.submenu, "Sign in").enabled
    assert find(presenter.build([v], INFO, NOW).menu, "Sign in to all").enabled


def test_a_failing_refresh_keeps_showing_how_long_the_token_still_works() -> None:
    entry = presenter.build([view(state="error", last_error="the identity provider could not be reached")],
                            INFO, NOW).menu[0]
    assert entry.label == "alice@contoso.example — refresh failing, expires in 42 min"
    assert entry.submenu is not None
    assert "Problem: the identity provider could not be reached" in labels(entry.submenu)


def test_while_signing_in_sign_out_is_disabled_and_sign_in_joins() -> None:
    entry = presenter.build([view(state="signing_in", expires_in=None)], INFO, NOW).menu[0]
    assert entry.label.endswith("— signing in…")
    assert entry.submenu is not None
    assert find(entry.submenu, "Sign in").enabled  # joins the running sign-in (TokenService.login)
    assert not find(entry.submenu, "Sign out").enabled


@pytest.mark.parametrize(("left", "text"), [
    (-5, "expired"), (0, "expired"), (59, "expires in under a minute"), (60, "expires in 1 min"),
    (42 * 60 + 59, "expires in 42 min"), (119 * 60, "expires in 119 min"), (125 * 60, "expires in 2 h 5 min"),
    (3 * 86400, "expires in 3 days"),
])
def test_expiry_text(left: float, text: str) -> None:
    assert presenter.expires_text(NOW + left, NOW) == text


def test_models_are_minute_granular_so_the_menu_is_rebuilt_at_most_once_a_minute() -> None:
    views = [view(expires_in=42 * 60 + 30)]
    first = presenter.build(views, INFO, NOW)
    assert presenter.build(views, INFO, NOW + 29) == first  # same minute: equal, no rebuild
    later = presenter.build(views, INFO, NOW + 31)
    assert later != first
    assert later.menu[0].label.endswith("expires in 41 min")


def test_many_profiles_get_one_entry_each_in_a_stable_order() -> None:
    views = [view(key=f"key{i:02d}", account=f"user{i:02d}@contoso.example",
                  state=random.Random(i).choice(["ok", "error", "sign_in_required", "signing_in", "unknown"]))
             for i in range(40)]
    model = presenter.build(views, INFO, NOW)
    entries = [i for i in model.menu if i.submenu is not None and i.label != "About kubetray"]
    assert [e.label.split(" — ")[0] for e in entries] == [f"user{i:02d}@contoso.example" for i in range(40)]
    assert {i.arg for e in entries for i in e.submenu or () if i.action == "sign_in"} == {v.key for v in views}
    shuffled = views[:]
    random.Random(7).shuffle(shuffled)
    assert presenter.build(shuffled, INFO, NOW) == model  # order of the snapshot does not matter


# -- the rest of the menu ------------------------------------------------------------------------------
def test_the_fixed_entries_follow_the_profiles() -> None:
    model = presenter.build([view()], INFO, NOW)
    assert labels(model.menu)[1:] == ["Sign in to all", "Start at login", "Open log folder", "About kubetray",
                                      "Quit kubetray"]
    assert model.menu[-1].action == "quit"
    assert find(model.menu, "Open log folder").action == "open_logs"
    about = find(model.menu, "About kubetray")
    assert about.submenu is not None
    assert labels(about.submenu) == ["kubetray 9.8.7", "Keyring: SecretService Keyring",
                                     "Socket: /run/user/1000/kubetray/kubetray.sock"]
    assert not find(model.menu, "Sign in to all").enabled  # everyone is signed in


@pytest.mark.parametrize(("enabled", "checked"), [(True, True), (False, False)])
def test_start_at_login_is_a_checkbox_showing_what_is_on_disk(enabled: bool, checked: bool) -> None:
    item = find(presenter.build([], replace(INFO, autostart=enabled), NOW).menu, "Start at login")
    assert (item.checked, item.enabled, item.action) == (checked, True, "toggle_autostart")


def test_start_at_login_is_disabled_with_the_reason_where_it_cannot_be_managed() -> None:
    model = presenter.build([], replace(INFO, autostart=None, autostart_note="unavailable here"), NOW)
    item = find(model.menu, "Start at login (unavailable here)")
    assert not item.enabled and item.checked is False


def test_about_mentions_a_missing_tray_host() -> None:
    about = find(presenter.build([], replace(INFO, tray_note="no tray host found"), NOW).menu, "About kubetray")
    assert about.submenu is not None and "Tray: no tray host found" in labels(about.submenu)


# -- notifications -------------------------------------------------------------------------------------
def kinds(before: list[ProfileView], after: list[ProfileView]) -> list[str]:
    return [n.kind for n in presenter.notices({v.key: v for v in before}, after, NOW)]


def test_losing_a_sign_in_notifies_sign_in_required_once() -> None:
    assert kinds([view()], [view(state="sign_in_required", expires_in=None)]) == ["sign_in_required"]
    required = [view(state="sign_in_required", expires_in=None)]
    assert kinds(required, required) == []


def test_a_new_profile_that_needs_sign_in_notifies() -> None:
    assert kinds([], [view(state="sign_in_required", expires_in=None)]) == ["sign_in_required"]


def test_a_failed_sign_in_is_not_announced_as_sign_in_required() -> None:
    # whoever started the sign-in (the tray, `kubetray login`, kubectl) reports its failure
    assert kinds([view(state="signing_in")], [view(state="sign_in_required", expires_in=None)]) == []


def test_completing_a_sign_in_notifies_with_account_and_expiry() -> None:
    notices = presenter.notices({"k1": view(state="signing_in", expires_in=None)}, [view()], NOW)
    assert [(n.kind, n.title) for n in notices] == [("signed_in", "Signed in")]
    assert "alice@contoso.example" in notices[0].message and "expires in 42 min" in notices[0].message


def test_a_silent_warm_up_at_start_is_quiet() -> None:
    assert kinds([view(state="unknown", expires_in=None)], [view()]) == []


def test_a_failing_refresh_notifies_once_with_the_plain_reason() -> None:
    failing = [view(state="error", last_error="could not reach login.example.test; check the network")]
    notices = presenter.notices({"k1": view()}, failing, NOW)
    assert [n.kind for n in notices] == ["refresh_failing"]
    assert notices[0].message == "alice@contoso.example: could not reach login.example.test; check the network"
    assert kinds(failing, failing) == []


def test_a_deadline_that_cannot_be_extended_warns_once_per_token() -> None:
    failing = [view(state="error", expires_in=9 * 60)]
    first, warned = presenter.deadline_notices(failing, NOW, frozenset())
    assert [n.kind for n in first] == ["deadline"]
    assert "expires in 9 min" in first[0].message
    again, warned = presenter.deadline_notices(failing, NOW + 60, warned)
    assert again == []


@pytest.mark.parametrize(("state", "left"), [("ok", 5 * 60), ("error", 11 * 60), ("error", -1)])
def test_no_deadline_warning_when_it_can_be_extended_or_is_far_or_past(state: str, left: float) -> None:
    assert presenter.deadline_notices([view(state=state, expires_in=left)], NOW, frozenset())[0] == []


def test_each_profile_lists_the_kubeconfig_contexts_that_use_it() -> None:
    from broker.core.state import ProfileView
    from broker.tray.presenter import TrayInfo, build

    view = ProfileView(key="k1", login="interactive", authority="https://login.example.test/t", tenant_id="t",
                       client_id="c", server_id="s", account="a@example.test", state="ok",
                       expires_on=1_000_000.0 + 3600, last_refresh=1_000_000.0, last_error="")
    info = TrayInfo("1", "kr", "/s", "/l", contexts=(("k1", ("prod", "staging")),))
    (profile, *_rest) = build([view], info, 1_000_000.0).menu
    labels = [item.label for item in profile.submenu]
    assert "Contexts: prod, staging" in labels
    bare = build([view], TrayInfo("1", "kr", "/s", "/l"), 1_000_000.0).menu[0]
    assert not any(label.startswith("Contexts:") for label in (i.label for i in bare.submenu))
