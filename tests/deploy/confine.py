"""Run a command under what a process can apply to itself of a systemd unit's confinement:

    python -m tests.deploy.confine [--umask 0077] [--no-new-privileges]
        [--memory-deny-write-execute] -- COMMAND ...

``--memory-deny-write-execute`` uses the kernel's ``PR_SET_MDWE`` (Linux 6.3+; what systemd
itself uses for ``MemoryDenyWriteExecute=`` since version 254, a seccomp filter before): no
mapping both writable and executable, none made executable later. It is inherited across
``execve`` and by every child. Exits with :data:`UNSUPPORTED` when the kernel lacks it.
"""

from __future__ import annotations

import argparse
import ctypes
import mmap
import os
import sys

UNSUPPORTED = 77
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_MDWE = 65
_PR_MDWE_REFUSE_EXEC_GAIN = 1


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="confine")
    parser.add_argument("--umask", type=lambda text: int(text, 8))
    parser.add_argument("--no-new-privileges", action="store_true")
    parser.add_argument("--memory-deny-write-execute", action="store_true")
    parser.add_argument("command", nargs="+")
    options = parser.parse_args(argv)
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    if options.umask is not None:
        os.umask(options.umask)
    if options.no_new_privileges and prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        sys.exit(f"confine: PR_SET_NO_NEW_PRIVS failed: {os.strerror(ctypes.get_errno())}")
    if options.memory_deny_write_execute:
        if prctl(_PR_SET_MDWE, _PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
            print(f"confine: no PR_SET_MDWE: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
            sys.exit(UNSUPPORTED)
        try:
            mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        except PermissionError:
            pass
        else:
            sys.exit("confine: a writable and executable mapping was still allowed")
    os.execvp(options.command[0], options.command)


if __name__ == "__main__":
    main(sys.argv[1:])
