"""Shell completion scripts for bash, zsh and fish, generated from the argument parser itself.

Generating them from the parser keeps them in step with the commands: a new option completes as soon
as it exists. Only words are completed (commands, options, fixed choices, context names from kubectl).
"""

from __future__ import annotations

import argparse


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse has no public way to list subcommands
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _words(sub: argparse.ArgumentParser) -> tuple[list[str], list[str]]:
    """Options (long ones) and positional choices of one subcommand."""
    options, choices = [], []
    for action in sub._actions:
        if action.help == argparse.SUPPRESS:
            continue
        if action.option_strings:
            options += [o for o in action.option_strings if o.startswith("--") and o != "--help"]
        elif action.choices and not isinstance(action, argparse._SubParsersAction):
            choices += [str(c) for c in action.choices]
        elif isinstance(action, argparse._SubParsersAction):
            choices += list(action.choices)
    return options, choices


def _bash(commands: dict[str, argparse.ArgumentParser]) -> str:
    cases = []
    for name, sub in commands.items():
        options, choices = _words(sub)
        cases.append(f'        {name}) words="{" ".join(choices + options)}" ;;')
    return f"""# bash completion for kubetray (from `kubetray completion bash`)
_kubetray() {{
    local cur prev words
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    if [ "$prev" = "--context" ]; then
        COMPREPLY=($(compgen -W "$(kubectl config get-contexts -o name 2>/dev/null)" -- "$cur"))
        return
    fi
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "{' '.join(commands)} --help --version" -- "$cur"))
        return
    fi
    case "${{COMP_WORDS[1]}}" in
{chr(10).join(cases)}
        *) words="" ;;
    esac
    COMPREPLY=($(compgen -W "$words --help" -- "$cur"))
}}
complete -o default -F _kubetray kubetray
"""


def _zsh(commands: dict[str, argparse.ArgumentParser]) -> str:
    described = " ".join(f"'{name}:{(sub.description or '').split(':')[0][:60]}'" for name, sub in commands.items())
    cases = []
    for name, sub in commands.items():
        options, choices = _words(sub)
        cases.append(f"        {name}) compadd -- {' '.join(choices + options + ['--help'])} ;;")
    return f"""#compdef kubetray
# zsh completion for kubetray (from `kubetray completion zsh`)
_kubetray() {{
    if [[ $words[CURRENT-1] == --context ]]; then
        compadd -- ${{(f)"$(kubectl config get-contexts -o name 2>/dev/null)"}}
        return
    fi
    if (( CURRENT == 2 )); then
        local -a cmds
        cmds=({described.replace("'", '"')})
        _describe 'command' cmds
        return
    fi
    case $words[2] in
{chr(10).join(cases)}
    esac
}}
compdef _kubetray kubetray
"""


def _fish(commands: dict[str, argparse.ArgumentParser]) -> str:
    lines = ["# fish completion for kubetray (from `kubetray completion fish`)",
             "complete -c kubetray -f",
             "complete -c kubetray -l context -x -a '(kubectl config get-contexts -o name 2>/dev/null)'"]
    for name, sub in commands.items():
        text = (sub.description or "").replace("'", "")[:70]
        lines.append(f"complete -c kubetray -n __fish_use_subcommand -a {name} -d '{text}'")
        options, choices = _words(sub)
        if choices:
            lines.append(f"complete -c kubetray -n '__fish_seen_subcommand_from {name}' -a '{' '.join(choices)}'")
        for option in options:
            lines.append(f"complete -c kubetray -n '__fish_seen_subcommand_from {name}' -l {option[2:]}")
    return "\n".join(lines) + "\n"


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    """The completion script for ``shell`` (bash, zsh or fish)."""
    commands = _commands(parser)
    return {"bash": _bash, "zsh": _zsh, "fish": _fish}[shell](commands)
