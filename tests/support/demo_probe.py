"""``kubetray demo`` for the leak check: the real run_demo, with an authority that also reports, on a
pipe the test passes (``python -m tests.support.demo_probe FD [--auto-approve]``), every token it
issued. Only the test process reads that pipe; nothing is written to a file."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

from broker.demo.authority import DemoAuthority
from broker.demo.run import run_demo


@dataclass
class _Reporting(DemoAuthority):
    fd: int = -1

    def _mint(self, form: dict[str, str], scope: str, nonce: str | None) -> dict[str, Any]:
        minted = super()._mint(form, scope, nonce)
        for name in ("access_token", "id_token", "refresh_token"):
            os.write(self.fd, minted[name].encode() + b"\n")
        return minted


def main() -> int:
    fd = int(sys.argv[1])
    return run_demo(auto_approve="--auto-approve" in sys.argv[2:],
                    authority=lambda pki, auto: _Reporting(pki, auto_approve=auto, fd=fd))


if __name__ == "__main__":
    sys.exit(main())
