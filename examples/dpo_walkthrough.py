"""A data-protection officer's walkthrough of Mesure, on a fresh data directory.

Creates a data directory, runs a collector on 127.0.0.1 and sends it some traffic, then runs
what a DPO would: the CNIL conformance check, the register of processing, a signed export and
its verification, an access and an erasure request, a key rotation, a retention dry run and the
audit-log verification, printing each step's output::

    python examples/dpo_walkthrough.py [--data DIR]

Nothing leaves this machine: the collector listens on loopback and Mesure opens no outbound
connection.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import uvicorn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collector.cli.main import main  # noqa: E402
from collector.config import load_config  # noqa: E402
from collector.datadir import initialize  # noqa: E402
from collector.web.app import create_app  # noqa: E402 - after making the work tree importable

SITE = "shop.example"
VISITOR_CID = "cid-walkthrough-Ab12Cd34"
VISITOR_UID = "customer-1042"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0.0.0 Safari/537.36"


@contextmanager
def collector(data_dir: Path) -> Iterator[str]:
    """A collector for ``data_dir`` on a free loopback port, stopped on exit."""
    app = create_app(load_config(data_dir, {}))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", ws="none")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    waiting = threading.Event()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the collector did not start")
        waiting.wait(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join()


def post(url: str, hit: dict[str, str]) -> None:
    """Send one hit as a browser's snippet would; urllib raises unless the answer is 2xx (202:
    stored, or counted when the mode keeps nothing)."""
    request = urllib.request.Request(
        url,
        data=json.dumps(hit).encode(),
        headers={"content-type": "text/plain", "user-agent": BROWSER},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 202


def step(title: str, *args: str) -> None:
    """Run one ``mesure`` command and print what a DPO would read."""
    print(f"\n=== {title}\n$ mesure {' '.join(args)}", flush=True)
    try:
        main.main(list(args), prog_name="mesure", standalone_mode=False)
    except SystemExit as exc:  # `check` exits 1 on a failing finding: show it, carry on
        print(f"(exit code {exc.code})")
    except click.ClickException as exc:
        exc.show()
        raise


def walkthrough(data_dir: Path) -> None:
    data = str(data_dir)
    print(f"Data directory: {data_dir}")
    initialize(data_dir, [SITE])
    # Declare where the data lives: the register and every export manifest state it.
    toml = data_dir / "mesure.toml"
    text = toml.read_text(encoding="utf-8")
    text = text.replace('# residency = "eu"', 'residency = "eu"')
    toml.write_text(text.replace("# host-location =", "host-location ="), encoding="utf-8")
    with collector(data_dir) as url:
        page = f"https://{SITE}/pricing"
        hits = [
            {"mode": "granted", "cid": VISITOR_CID},
            {"mode": "granted", "cid": VISITOR_CID, "uid": VISITOR_UID, "name": "signup"},
            {"mode": "exempt"},
            {"mode": "denied"},
        ]
        for fields in hits:
            post(f"{url}/api/hit", {"site": SITE, "url": page, **fields})
        print(f"Sent {len(hits)} hits to {url}")
    exports = data_dir / "exports"
    step("CNIL exemption conformance", "check", "--data", data)
    step("Record of processing (GDPR Art. 30)", "register", "--data", data)
    step(
        "Signed export of everything stored",
        *("export", "--data", data, "--from", "2000-01-01", "--to", "2100-12-31"),
        *("--out", str(exports / "all"), "--by", "dpo@shop.example"),
    )
    step("The public key an auditor verifies with", "keys", "public", "--data", data)
    step("Verify the export", "export", "verify", str(exports / "all"), "--data", data)
    step(
        "Access request (Art. 15) by user id",
        *("dsar", "access", "--data", data, "--site", SITE, "--user-id", VISITOR_UID),
        *("--out", str(exports / "access")),
    )
    step(
        "Erasure request (Art. 17) by client id, from the opt-out page",
        *("dsar", "erase", "--data", data, "--site", SITE, "--client-id", VISITOR_CID),
    )
    step("Key rotation", "keys", "rotate", "--data", data, "--site", SITE)
    step("Key epochs", "keys", "list", "--data", data)
    step("Retention dry run", "retention", "run", "--data", data, "--dry-run")
    step("Audit log verification", "audit", "verify", "--data", data)
    step("Audit log", "audit", "show", "--data", data)


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="A new data directory (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.data is not None:
        walkthrough(args.data)
        return
    with tempfile.TemporaryDirectory(prefix="mesure-dpo-") as folder:
        walkthrough(Path(folder) / "data")


if __name__ == "__main__":
    run()
