"""nginx and Caddy with the committed configurations of examples/deploy, in front of a real
``mesure serve`` whose [server] table is examples/deploy/mesure.toml's.

Everything listens on 127.0.0.1. The clients connect from other loopback addresses
(127.0.1.x through nginx, 127.0.2.x through Caddy) while each proxy reaches the collector from
127.0.0.1, so attributing a hit to the proxy instead of its client shows. Each test names the
addresses it uses, so no two share a rate-limit count.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import shutil
import ssl
import subprocess
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from click.testing import CliRunner

import sdk_snippet
from collector import auth
from collector.cli.main import main
from collector.storage.sqlite.events import open_storage
from tests.deploy.harness import (
    CONTACTS,
    DEPLOY,
    PUBLIC_NAME,
    Certificate,
    ToLoopback,
    addresses,
    browser,
    configures_mesure,
    listening,
    make_certificate,
    render,
    start,
    stop,
    traced,
    wait_until,
)
from tests.support import free_port, start_mesure_serve

SITE = "example.com"
OWNER = "owner@example.com"
PASSWORD = "deploy-test-password"
#: The collector's per-client limit here: small enough to reach, large enough for every test.
RATE = 5
SERVER_TABLE = (DEPLOY / "mesure.toml").read_text(encoding="utf-8")
HEADER = tomllib.loads(SERVER_TABLE)["server"]["client-ip-header"]
COOKIE = f"{auth.SESSION_COOKIE}="
#: What a proxy's client may send to choose the address it is counted as.
FORGERIES = ("x-real-ip", "x-forwarded-for", "forwarded")

# Around the committed site, what Debian's /etc/nginx/nginx.conf sets for every site (its access
# log and gzip included: the site must turn them off itself), with the test's paths. Workers run
# as root because the test's directory is readable by root alone.
NGINX_MAIN = """\
user root;
worker_processes 1;
events {{
    worker_connections 256;
}}
http {{
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers on;
    access_log {dir}/access.log;
    gzip on;
    client_body_temp_path {dir}/temp/body;
    proxy_temp_path {dir}/temp/proxy;
    fastcgi_temp_path {dir}/temp/fastcgi;
    uwsgi_temp_path {dir}/temp/uwsgi;
    scgi_temp_path {dir}/temp/scgi;
    include {dir}/mesure.conf;
}}
"""

# Caddy's global options for the test, in place of the committed ACME e-mail: loopback ports,
# no admin endpoint, nothing obtained, stapled or installed (the certificate is the test's).
CADDY_GLOBAL = """\
\tadmin off
\thttp_port {http}
\thttps_port {https}
\tdefault_bind 127.0.0.1
\tauto_https disable_certs
\tocsp_stapling off
\tskip_install_trust
"""

T = TypeVar("T")


def _hit(path: str) -> dict[str, str]:
    return {"site": SITE, "url": f"https://{SITE}{path}", "mode": "exempt"}


def _within_one_minute(attempt: Callable[[int], T]) -> T:
    """``attempt(n)`` until one run falls within a single clock minute, the collector's rate
    window (and, at midnight, its cookieless key's day). One run takes a second or so, so a
    second run never crosses a boundary too; ``n`` lets it use fresh addresses."""
    for n in range(2):
        minute = time.time() // 60
        result = attempt(n)
        if time.time() // 60 == minute:
            return result
    raise AssertionError("both runs crossed a minute boundary")


@dataclass
class Collector:
    port: int
    data: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def events(self) -> list[dict[str, Any]]:
        storage = open_storage(self.data / "mesure.db", migrate=False)
        try:
            return storage.events()
        finally:
            storage.close()


@dataclass
class Proxy:
    name: str
    subnet: int
    https_port: int
    http_port: int
    trust: ssl.SSLContext
    trace: Path
    logs: tuple[Path, ...]
    collector: Collector

    @property
    def origin(self) -> str:
        return f"https://{PUBLIC_NAME}:{self.https_port}"

    def address(self, host: int) -> str:
        return f"127.0.{self.subnet}.{host}"

    def client(self, host: int) -> httpx.Client:
        """A browser at :meth:`address` ``host``, talking to the proxy over HTTPS."""
        return browser(self.origin, ToLoopback(self.trust, self.address(host)))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@contextlib.contextmanager
def _collector(base: Path) -> Iterator[Collector]:
    """``mesure serve`` on a data directory made as docs/deployment.md says."""
    data = base / "data"
    runner = CliRunner()
    created = runner.invoke(main, ["init", "--data", str(data), "--site", SITE])
    assert created.exit_code == 0, created.output
    added = runner.invoke(
        main,
        ["user", "add", OWNER, "--role", "owner", "--data", str(data)],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert added.exit_code == 0, added.output
    # The operator's step: the [server] table of examples/deploy/mesure.toml in place of the one
    # `mesure init` wrote.
    config = data / "mesure.toml"
    server = SERVER_TABLE[SERVER_TABLE.index("\n[server]\n") + 1 :]
    text, replaced = re.subn(
        r"^\[server\]\n.*?(?=^\[\[sites\]\])",
        lambda _: f"{server}client-rate-per-minute = {RATE}\n\n",
        config.read_text(encoding="utf-8"),
        flags=re.M | re.S,
    )
    assert replaced == 1
    config.write_text(text, encoding="utf-8")
    port = free_port()
    # Only the file configures it: a MESURE_* variable of the caller's would override it.
    environment = {k: v for k, v in os.environ.items() if not configures_mesure(k)}
    process = start_mesure_serve(data, port, environment)
    try:
        yield Collector(port, data)
    finally:
        stop(process)


def _start_nginx(
    directory: Path, certificate: Certificate, collector: Collector
) -> tuple[Proxy, subprocess.Popen[bytes]]:
    https, http = free_port(), free_port()
    site = render(
        DEPLOY / "nginx" / "mesure.conf",
        [
            ("listen 80;", f"listen 127.0.0.1:{http};"),
            ("listen [::]:80;", ""),
            ("listen 443 ssl http2;", f"listen 127.0.0.1:{https} ssl http2;"),
            ("listen [::]:443 ssl http2;", ""),
            ("server 127.0.0.1:8000;", f"server 127.0.0.1:{collector.port};"),
            ("/etc/letsencrypt/live/stats.example.eu/fullchain.pem", str(certificate.chain)),
            ("/etc/letsencrypt/live/stats.example.eu/privkey.pem", str(certificate.key)),
        ],
    )
    (directory / "mesure.conf").write_text(site, encoding="utf-8")
    (directory / "nginx.conf").write_text(NGINX_MAIN.format(dir=directory), encoding="utf-8")
    (directory / "temp").mkdir()
    pid = directory / "nginx.pid"
    command = ["nginx", "-p", str(directory), "-c", str(directory / "nginx.conf")]
    command += ["-g", f"daemon off; pid {pid}; error_log stderr;"]
    trust = ssl.create_default_context(cafile=certificate.ca)
    output, trace = directory / "nginx.log", directory / "nginx.strace"
    logs = (output, directory / "access.log")
    proxy = Proxy("nginx", 1, https, http, trust, trace, logs, collector)
    return proxy, start(traced(command, trace, "%network"), output)


def _start_caddy(
    directory: Path, certificate: Certificate, collector: Collector
) -> tuple[Proxy, subprocess.Popen[bytes]]:
    https, http = free_port(), free_port()
    tls = f"\ttls {certificate.chain} {certificate.key}\n"
    caddyfile = render(
        DEPLOY / "caddy" / "Caddyfile",
        [
            ("\temail ops@example.eu\n", CADDY_GLOBAL.format(http=http, https=https)),
            (f"{PUBLIC_NAME} {{\n", f"{PUBLIC_NAME} {{\n{tls}"),
            ("reverse_proxy 127.0.0.1:8000 {", f"reverse_proxy 127.0.0.1:{collector.port} {{"),
        ],
    )
    (directory / "Caddyfile").write_text(caddyfile, encoding="utf-8")
    command = ["caddy", "run", "--config", str(directory / "Caddyfile"), "--adapter", "caddyfile"]
    # Caddy keeps its state under these: the test's directory, not the user's.
    state = str(directory / "state")
    environment = {**os.environ, "HOME": state, "XDG_DATA_HOME": state, "XDG_CONFIG_HOME": state}
    trust = ssl.create_default_context(cafile=certificate.ca)
    output, trace = directory / "caddy.log", directory / "caddy.strace"
    proxy = Proxy("caddy", 2, https, http, trust, trace, (output,), collector)
    return proxy, start(traced(command, trace, "%network"), output, env=environment)


@pytest.fixture(scope="module", params=["nginx", "caddy"])
def proxy(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    certificate: Certificate,
) -> Iterator[Proxy]:
    """A proxy in front of a collector of its own (a proxy that misattributes hits spends
    127.0.0.1's rate limit in its own collector, not in the other proxy's)."""
    if shutil.which("strace") is None:
        pytest.fail("strace is missing: it shows which hosts the proxy contacts")
    directory = tmp_path_factory.mktemp(request.param)
    launch = _start_nginx if request.param == "nginx" else _start_caddy
    with _collector(directory) as collector:
        found, process = launch(directory, certificate, collector)
        try:
            for port in (found.https_port, found.http_port):
                wait_until(partial(listening, port), f"{found.name} on port {port}", process)
            yield found
        finally:
            stop(process)


def test_the_rate_limit_counts_the_client_the_proxy_saw(proxy: Proxy) -> None:
    def attempt(n: int) -> tuple[list[int], httpx.Response, int, int]:
        first, second = 10 + 2 * n, 11 + 2 * n
        with proxy.client(first) as spender, proxy.client(second) as other:
            spent = [
                spender.post("/api/hit", json=_hit(f"/limit/{k}")).status_code
                for k in range(RATE + 1)
            ]
            fresh = {name: "198.51.100.1" for name in FORGERIES}
            forged = spender.post("/api/hit", json=_hit("/limit/forged"), headers=fresh)
            own = other.post("/api/hit", json=_hit("/limit/other")).status_code
            posing = {name: proxy.address(first) for name in FORGERIES}
            posed = other.post("/api/hit", json=_hit("/limit/posing"), headers=posing).status_code
        return spent, forged, own, posed

    spent, forged, own, posed = _within_one_minute(attempt)
    assert spent == [202] * RATE + [429]
    # Naming another address does not buy the spent client a fresh count...
    assert forged.status_code == 429
    assert forged.json()["error"] == "too many hits, retry later"
    assert 1 <= int(forged.headers["retry-after"]) <= 60
    # ...the count is the client's, not the proxy's (whose connections all come from 127.0.0.1)...
    assert own == 202
    # ...and naming the spent client's address does not spend it for another client.
    assert posed == 202


def test_the_cookieless_visitor_is_the_client_the_proxy_saw(proxy: Proxy) -> None:
    def attempt(n: int) -> str:
        host = 20 + n
        tag = f"/visitor/{proxy.name}/{n}"
        with proxy.client(host) as client:
            for k, forged in enumerate(("198.51.100.2", "198.51.100.3")):
                headers = {name: forged for name in FORGERIES}
                sent = client.post("/api/hit", json=_hit(f"{tag}/proxied-{k}"), headers=headers)
                assert sent.status_code == 202
        # What the proxy hands Mesure, sent straight to it: the header naming this client, then
        # naming the proxy's own address.
        with browser(proxy.collector.url) as direct:
            for name, address in (("as-client", proxy.address(host)), ("as-proxy", "127.0.0.1")):
                sent = direct.post(
                    "/api/hit", json=_hit(f"{tag}/{name}"), headers={HEADER: address}
                )
                assert sent.status_code == 202
        return tag

    tag = _within_one_minute(attempt)
    rows = {row["path"]: row for row in proxy.collector.events() if row["path"].startswith(tag)}
    visitor = {path.rsplit("/", 1)[1]: row["visitor"] for path, row in rows.items()}
    assert {row["visitor_kind"] for row in rows.values()} == {"cookieless"}
    assert visitor["proxied-0"] == visitor["proxied-1"] == visitor["as-client"]
    assert visitor["as-client"] != visitor["as-proxy"]


def test_dashboard_login_through_the_proxy(proxy: Proxy) -> None:
    form = {"email": OWNER, "password": PASSWORD, "next": "/"}
    with proxy.client(30) as client:
        page = client.get("/login")
        assert (page.status_code, page.http_version) == (200, "HTTP/2")
        assert 'name="password"' in page.text
        # The proxy passes the Host the browser used: a post from another origin is refused,
        # one from the collector's own origin is not.
        elsewhere = client.post("/login", data=form, headers={"origin": "https://example.org"})
        assert elsewhere.status_code == 403
        login = client.post("/login", data=form, headers={"origin": proxy.origin})
        assert (login.status_code, login.headers["location"]) == (303, "/")
        cookies = [c for c in login.headers.get_list("set-cookie") if c.startswith(COOKIE)]
        assert len(cookies) == 1
        attributes = {
            name.strip().lower(): value.strip().lower()
            for name, _, value in (part.partition("=") for part in cookies[0].split(";")[1:])
        }
        assert attributes["samesite"] == "lax"
        assert {"secure", "httponly"} <= attributes.keys()
        dashboard = client.get("/")
        assert dashboard.status_code == 200
        assert OWNER in dashboard.text
        assert dashboard.headers["strict-transport-security"] == "max-age=63072000"


@pytest.mark.parametrize("path", ["/m.js", f"/optout?site={SITE}", "/optout.js"])
def test_the_tracker_and_the_opt_out_page_arrive_as_mesure_sent_them(
    proxy: Proxy, path: str
) -> None:
    with browser(proxy.collector.url) as direct_client, proxy.client(40) as client:
        direct = direct_client.get(path)
        proxied = client.get(path)
    assert direct.status_code == proxied.status_code == 200
    assert proxied.http_version == "HTTP/2"
    assert proxied.content == direct.content
    sent = sorted((name, value) for name, value in direct.headers.multi_items() if name != "date")
    arrived = sorted(proxied.headers.multi_items())
    assert [header for header in sent if header not in arrived] == []
    assert proxied.headers["strict-transport-security"] == "max-age=63072000"


def test_the_tracker_matches_its_integrity_hash_and_revalidates(proxy: Proxy) -> None:
    with proxy.client(41) as client:
        script = client.get("/m.js")
        digest = base64.b64encode(hashlib.sha384(script.content).digest()).decode()
        assert f"sha384-{digest}" == sdk_snippet.sri_hash()
        again = client.get("/m.js", headers={"if-none-match": script.headers["etag"]})
    assert again.status_code == 304
    assert again.headers["etag"] == script.headers["etag"]


def test_plain_http_is_sent_to_https(proxy: Proxy) -> None:
    plain = f"http://{PUBLIC_NAME}:{proxy.http_port}"
    with browser(plain, ToLoopback(proxy.trust, proxy.address(50))) as client:
        moved = client.get("/m.js?v=1")
    assert moved.status_code in (301, 308)
    # nginx sends browsers to port 443; Caddy keeps the port it was told to serve HTTPS on.
    assert moved.headers["location"] in (
        f"https://{PUBLIC_NAME}/m.js?v=1",
        f"https://{PUBLIC_NAME}:{proxy.https_port}/m.js?v=1",
    )


def test_the_proxy_stays_on_loopback_and_logs_no_visitor(proxy: Proxy) -> None:
    with proxy.client(60) as client:
        assert client.post("/api/hit", json=_hit("/logged")).status_code == 202
        assert client.get("/no-such-page").status_code == 404
    loopback, other = addresses(proxy.trace, CONTACTS)
    assert other == []
    assert "127.0.0.1" in loopback  # its connections to the collector: the trace is not empty
    listened, exposed = addresses(proxy.trace, ["bind"])
    assert (set(listened), exposed) == ({"127.0.0.1"}, [])
    visitors = f"127.0.{proxy.subnet}."
    for log in proxy.logs:
        assert visitors not in log.read_text(errors="replace"), log.name
