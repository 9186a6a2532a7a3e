"""What Go's flag packages accept and argparse does not (both kubelogins are Go programs)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from broker.core.errors import InvalidArguments


def normalise_bools(argv: Sequence[str], bool_flags: Collection[str]) -> list[str]:
    """Turn Go's ``--flag=true`` / ``--flag=false`` for the given boolean flags into argparse's form."""
    out: list[str] = []
    for arg in argv:
        name, eq, value = arg.partition("=")
        if eq and name in bool_flags:
            if value.lower() in ("true", "1"):
                out.append(name)
            elif value.lower() not in ("false", "0"):
                raise InvalidArguments(f"{name} takes true or false, not {value!r}")
        else:
            out.append(arg)
    return out
