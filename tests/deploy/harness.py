"""What the deployment tests share: the committed configurations rendered for a test run, a
throwaway certificate, processes started and stopped within bounds, an HTTPS client that reaches
``stats.example.eu`` on 127.0.0.1, and a reading of strace logs."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support import BROWSER_UA, ROOT

DEPLOY = ROOT / "examples" / "deploy"
PUBLIC_NAME = "stats.example.eu"
#: Every wait of these tests ends within this many seconds.
STARTUP_SECONDS = 20.0


def configures_mesure(variable: str) -> bool:
    """Whether an environment variable would override the collector's mesure.toml (the
    suite's own ``MESURE_TEST_*``, such as the loopback guard's log, do not)."""
    return variable.startswith("MESURE_") and not variable.startswith("MESURE_TEST_")


def render(source: Path, replacements: Sequence[tuple[str, str]]) -> str:
    """``source`` with each ``(old, new)`` applied; ``old`` must occur exactly once, so a
    committed file that changes under the test fails it instead of being run half-rendered."""
    text = source.read_text(encoding="utf-8")
    for old, new in replacements:
        found = text.count(old)
        if found != 1:
            raise AssertionError(f"{source}: expected {old!r} once, found it {found} times")
        text = text.replace(old, new)
    return text


@dataclass(frozen=True)
class Certificate:
    """A test CA and the server certificate it signed for ``stats.example.eu`` and 127.0.0.1."""

    ca: Path
    chain: Path
    key: Path


def make_certificate(directory: Path) -> Certificate:
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Mesure deploy test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, PUBLIC_NAME)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName(PUBLIC_NAME),
                    x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    paths = Certificate(directory / "ca.pem", directory / "chain.pem", directory / "key.pem")
    paths.ca.write_bytes(ca.public_bytes(pem))
    paths.chain.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    paths.key.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    paths.key.chmod(0o600)
    return paths


def wait_until(check: Callable[[], bool], what: str, process: subprocess.Popen[bytes]) -> None:
    """Poll ``check`` until it holds; fail when ``process`` ends or the bound passes."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while not check():
        if process.poll() is not None:
            raise AssertionError(f"{what}: the process ended (status {process.returncode})")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {STARTUP_SECONDS:g} s")
        threading.Event().wait(0.05)


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def start(
    command: Sequence[str],
    log: Path,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """``command`` in a process group of its own (strace and what it traces, nginx's master and
    worker: one signal reaches them all), its output in ``log``."""
    with log.open("ab") as output:
        return subprocess.Popen(
            list(command),
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes], *, grace: float = 10.0) -> int:
    """SIGTERM to the process group, SIGKILL if it is still there after ``grace`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        return process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        return process.wait(timeout=grace)


def traced(command: Sequence[str], log: Path, calls: str) -> list[str]:
    """``command`` under strace, following forks, recording the system calls ``calls``."""
    return ["strace", "-f", "-qq", "-o", str(log), "-e", f"trace={calls}", *command]


class ToLoopback(httpx.BaseTransport):
    """Sends requests for any host to 127.0.0.1, from a chosen loopback address, keeping the
    name in the Host header, the TLS SNI and the certificate check: what a browser resolving
    ``stats.example.eu`` to this machine would send (the suite may not look names up)."""

    def __init__(self, verify: ssl.SSLContext, source: str) -> None:
        self._inner = httpx.HTTPTransport(verify=verify, http2=True, local_address=source)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        extensions = {**request.extensions, "sni_hostname": request.url.host}
        forwarded = httpx.Request(
            request.method,
            request.url.copy_with(host="127.0.0.1"),
            headers=request.headers,
            stream=request.stream,
            extensions=extensions,
        )
        return self._inner.handle_request(forwarded)

    def close(self) -> None:
        self._inner.close()


def browser(base_url: str, transport: httpx.BaseTransport | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=base_url,
        headers={"user-agent": BROWSER_UA},
        transport=transport,
        timeout=20,
    )


_INET = re.compile(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"')


def addresses(strace_log: Path, calls: Sequence[str]) -> tuple[list[str], list[str]]:
    """The IP addresses that ``calls`` (``connect``, ``bind`` …) name in an strace log, split
    into (loopback, other)."""
    call = re.compile(rf"\b(?:{'|'.join(calls)})\((.*)")
    loopback: list[str] = []
    other: list[str] = []
    for line in strace_log.read_text(errors="replace").splitlines():
        found = call.search(line)
        if found is None:
            continue
        for v4, v6 in _INET.findall(found.group(1)):
            address = ipaddress.ip_address(v4 or v6)
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                address = address.ipv4_mapped
            (loopback if address.is_loopback else other).append(str(address))
    return loopback, other


#: The calls by which a process reaches another host (a UDP name lookup included).
CONTACTS = ("connect", "sendto", "sendmsg")
