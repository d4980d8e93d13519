"""Run a Python program with every non-loopback network access refused and recorded.

    python -m tests.loopback_guard LOG -m collector serve --data DIR
    python -m tests.loopback_guard LOG examples/dpo_walkthrough.py --data DIR

An audit hook (PEP 578) sees every ``connect``, ``sendto`` and name lookup the interpreter makes,
in any thread, before it happens. One whose address is not loopback (or a Unix socket) is
appended to ``LOG`` and refused with ``OSError``, so nothing leaves the machine and the test
that reads ``LOG`` afterwards learns of it even when the program swallowed the error.

``tests/conftest.py`` installs the same guard in the test process itself (without a log), so the
whole suite runs with only loopback reachable (DESIGN.md §5.6).
"""

from __future__ import annotations

import ipaddress
import runpy
import socket
import sys
from pathlib import Path
from typing import Any

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
LOOKUPS = ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr")


def is_loopback(host: Any) -> bool:
    if host is None:  # getaddrinfo(None, port): the local wildcard address
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def install(log: Path | None) -> None:
    """Refuse every non-loopback access from now on in this process (audit hooks cannot be
    removed); record each one in ``log`` when given."""

    def refuse(event: str, target: Any) -> None:
        if log is not None:
            with log.open("a", encoding="utf-8") as file:
                file.write(f"{event} {target!r}\n")
        raise OSError(f"loopback guard: {event} to {target!r} refused")

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
            sock, address = args[0], args[-1]
            if getattr(sock, "family", None) == socket.AF_UNIX or address is None:
                return
            if not is_loopback(address[0] if isinstance(address, tuple) else address):
                refuse(event, address)
        elif event in LOOKUPS and not is_loopback(args[0]):
            refuse(event, args[0])

    sys.addaudithook(hook)


def main(argv: list[str]) -> None:
    install(Path(argv[0]))
    if argv[1] == "-m":
        sys.argv = [argv[2], *argv[3:]]
        runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
    else:
        sys.argv = argv[1:]
        runpy.run_path(argv[1], run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
