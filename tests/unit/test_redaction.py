"""Secrets never reach a dry-run diff or a log line, in any of the forms a kubeconfig or a log can hold."""

from __future__ import annotations

import logging

import pytest

from broker.kubeconfig import convert
from broker.process.logsetup import RedactingFormatter, redact

SECRET = "s3cr3t-VALUE_9"


def diff_of(old_user: str, new_user: str | None = None, *, every_line: bool = False) -> str:
    """The dry-run diff of a kubeconfig user body changing from ``old_user`` to ``new_user``: by default
    only the command line after it changes (the secret is context), with ``every_line`` every line
    changes (the secret is on both sides)."""
    head = "apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n"
    if new_user is None:
        old_user += "      command: kubelogin\n"
        new_user = old_user.replace("command: kubelogin", "command: /x/kubetray-shim")
        if every_line:
            new_user = "".join(line + "  \n" for line in new_user.splitlines())
    return convert.unified_diff(head + old_user, head + new_user, "config")


EXEC = "    exec:\n"

DIFF_CASES = {
    "list form": EXEC + f"      args:\n      - get-token\n      - --client-secret\n      - {SECRET}\n      - --login\n",
    "list form, quoted": EXEC + f'      args:\n      - "--client-secret"\n      - "{SECRET}"\n',
    "list form, password": EXEC + f"      args:\n      - --password\n      - {SECRET}\n",
    "list form, certificate password": EXEC + f"      args:\n      - --client-certificate-password\n      - {SECRET}\n",
    "list form, oidc": EXEC + f"      args:\n      - --oidc-client-secret\n      - {SECRET}\n",
    "equals form": EXEC + f"      args:\n      - --client-secret={SECRET}\n",
    "space form": EXEC + f"      args:\n      - --client-secret {SECRET}\n",
    "flow list": EXEC + f"      args: [get-token, --client-secret, {SECRET}, --login, spn]\n",
    "flow list, quoted": EXEC + f'      args: ["get-token", "--password", "{SECRET}"]\n',
    "env, name first": EXEC + f"      env:\n      - name: AAD_SERVICE_PRINCIPAL_CLIENT_SECRET\n"
                              f"        value: {SECRET}\n",
    "env, value first": EXEC + f"      env:\n      - value: {SECRET}\n        name: AZURE_CLIENT_SECRET\n",
    "env, password": EXEC + f"      env:\n      - name: AAD_USER_PRINCIPAL_PASSWORD\n        value: '{SECRET}'\n",
    "env, token": EXEC + f"      env:\n      - name: SYSTEM_ACCESSTOKEN\n        value: {SECRET}\n",
    "env, key": EXEC + f"      env:\n      - name: MY_API_KEY\n        value: {SECRET}\n",
    "env, flow": EXEC + f"      env: [{{name: AZURE_CLIENT_SECRET, value: {SECRET}}}]\n",
    "env, flow value first": EXEC + f"      env: [{{value: {SECRET}, name: ARM_CLIENT_SECRET}}]\n",
}


@pytest.mark.parametrize("every_line", [False, True], ids=["as context", "on both sides"])
@pytest.mark.parametrize("body", DIFF_CASES.values(), ids=DIFF_CASES.keys())
def test_the_dry_run_diff_never_shows_a_secret(body: str, every_line: bool) -> None:
    diff = diff_of(body, every_line=every_line)
    assert "kubetray-shim" in diff and diff.count("<redacted>") == (2 if every_line else 1), diff
    assert SECRET not in diff, diff


@pytest.mark.parametrize("field", ["client-key-data", "token", "password", "client-secret", "refresh-token"])
def test_credential_fields_of_a_user_are_redacted(field: str) -> None:
    old = f"    {field}: {SECRET}\n    username: admin\n"
    diff = diff_of(old, f"    {field}: {SECRET}\n    username: root\n")
    assert "username: root" in diff and SECRET not in diff


def test_harmless_neighbours_stay_readable() -> None:
    body = EXEC + ("      args:\n      - --client-id\n      - 80faf920\n      - --server-id\n      - 6dae42f8\n"
                   "      env:\n      - name: AZURE_FEDERATED_TOKEN_FILE\n        value: /var/run/token\n")
    diff = diff_of(body, every_line=True)
    assert "80faf920" in diff and "6dae42f8" in diff and "/var/run/token" in diff and "<redacted>" not in diff


def test_a_hostile_kubeconfig_cannot_drive_the_terminal_through_its_diff() -> None:
    diff = diff_of(EXEC + "      args:\n      - \"\\e]0;pwned\\a\"\n".replace("\\e", "\x1b").replace("\\a", "\x07"))
    assert "\x1b" not in diff and "\x07" not in diff


LOG_CASES = [
    f"--client-secret {SECRET}",
    f"--client-secret={SECRET}",
    f"args ['get-token', '--client-secret', '{SECRET}']",
    f'["--password", "{SECRET}"]',
    f"--client-certificate-password {SECRET}",
    f"client-secret: {SECRET}",
    f"client_secret={SECRET}&grant_type=client_credentials",
    f'{{"refresh_token": "{SECRET}"}}',
    f"refresh-token: {SECRET}",
    f"AZURE_CLIENT_SECRET={SECRET}",
    f"AAD_SERVICE_PRINCIPAL_CLIENT_SECRET={SECRET} AZURE_TENANT_ID=t",
    f'{{"AAD_USER_PRINCIPAL_PASSWORD": "{SECRET}"}}',
    f"SYSTEM_ACCESSTOKEN={SECRET}",
    f"client-key-data: {SECRET}",
]


@pytest.mark.parametrize("line", LOG_CASES)
def test_the_log_redactor_covers_hyphenated_flag_and_name_value_forms(line: str) -> None:
    assert SECRET not in redact(line), redact(line)


def test_the_log_redactor_leaves_what_is_not_secret() -> None:
    line = "AZURE_TENANT_ID=t1 AZURE_FEDERATED_TOKEN_FILE=/var/run/token --client-id abc error_codes: [50173]"
    assert redact(line) == line


def test_the_log_formatter_strips_terminal_control_but_keeps_lines() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "provider said %s", ("\x1b]0;t\x07bad\nnext",), None)
    assert RedactingFormatter("%(message)s").format(record) == "provider said bad\nnext"
