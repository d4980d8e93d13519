"""Refuse every non-loopback network access of a Python process, and record each one.

An audit hook (PEP 578) sees every ``connect``, ``sendto`` and name lookup the interpreter makes,
in any thread, before it happens. One whose address is not loopback (or a Unix socket) is refused
with ``OSError``, so nothing leaves the machine, and appended to a log, so the suite learns of it
even when the program swallowed the error.

``tests/conftest.py`` installs it in the test process (collectors served in threads included) and,
through ``tests/guarded_site/sitecustomize.py`` on ``PYTHONPATH``, in every Python process the
suite starts with an environment derived from its own: ``mesure serve`` and its forked workers
(an audit hook survives ``fork``), CLI commands, examples, the installed wheel's ``mesure``. All
of them append to the session's log, named by ``LOG_VARIABLE``; the session fails if it holds
anything (docs/design.md §5.6).

Standard library only: ``sitecustomize`` loads this file by its path, also in environments that
do not have the ``tests`` package (the wheel's virtual environment).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
from collections.abc import Iterator
from typing import Any

#: The environment variable naming the log; unset, a process started by the suite is unguarded.
LOG_VARIABLE = "MESURE_TEST_OUTBOUND_LOG"
#: The folder put first on ``PYTHONPATH``: it holds nothing but ``sitecustomize.py``, so that it
#: changes no import of the programs it guards.
SITE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "guarded_site")

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
# Every connect the collectors make goes to one of these: no ipaddress parsing for them.
COMMON_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
CONNECTS = frozenset({"socket.connect", "socket.sendto", "socket.sendmsg"})
LOOKUPS = frozenset({"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr"})
WATCHED = CONNECTS | LOOKUPS

_expected = threading.local()


def is_loopback(host: Any) -> bool:
    if host is None:  # getaddrinfo(None, port): the local wildcard address
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host in COMMON_LOOPBACK or host.lower() in LOOPBACK_NAMES:
        return True
    import ipaddress  # only here: every guarded process imports this module at start-up

    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def environment(log: str | os.PathLike[str]) -> dict[str, str]:
    """The variables that put a child process under the guard, recording into ``log``: for an
    environment built from scratch (one derived from the suite's has them already)."""
    return {"PYTHONPATH": SITE_DIR, LOG_VARIABLE: os.fspath(log)}


def install() -> None:
    """Refuse every non-loopback access from now on in this process (audit hooks cannot be
    removed), and record each one in the log that ``LOG_VARIABLE`` names at the time: a pytest
    session started by a test names its own, and a process guarded since its start-up then
    records there (its first hook refuses before a second one would)."""
    installed_with = os.environ.get(LOG_VARIABLE)

    def refuse(event: str, target: Any) -> None:
        path = os.environ.get(LOG_VARIABLE) or installed_with
        if path and not getattr(_expected, "active", False):
            test = os.environ.get("PYTEST_CURRENT_TEST", "no test")
            where = f"pid {os.getpid()}: {' '.join(sys.argv)} ({test})"
            with open(path, "a", encoding="utf-8") as file:
                file.write(f"{event} {target!r}\t{where}\n")
        raise OSError(f"loopback guard: {event} to {target!r} refused")

    def hook(event: str, args: tuple[Any, ...]) -> None:
        # Called for every audited event (each open, import, exec...): the first test is cheap.
        if event not in WATCHED:
            return
        if event in CONNECTS:
            sock, address = args[0], args[-1]
            if getattr(sock, "family", None) == socket.AF_UNIX or address is None:
                return
            if not is_loopback(address[0] if isinstance(address, tuple) else address):
                refuse(event, address)
        elif not is_loopback(args[0]):
            refuse(event, args[0])

    sys.addaudithook(hook)


@contextlib.contextmanager
def refusals_expected() -> Iterator[None]:
    """In this thread, refused as ever but not recorded: for a test that shows the guard at work
    in the test process itself, which must not fail the session."""
    _expected.active = True
    try:
        yield
    finally:
        _expected.active = False
