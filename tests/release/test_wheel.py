"""The release: `python -m build` makes an sdist and, from it, a wheel that runs anywhere.

The wheel is installed into a fresh virtual environment outside the source tree, with its
dependencies from the lock (requirements/app.txt, hashes checked, no index: the wheels
tests/setup.sh downloaded), exactly as docs/install.md installs it. Then the
installed `mesure serve` collects a hit, the dashboard logs in, and the report counts the hit.
A file the collector serves that the wheel leaves out fails here, by name or by its route.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import loopback_guard
from tests.release.lockfiles import REQUIREMENTS, ROOT
from tests.support import BROWSER_UA, free_port

PACKAGES = ("collector", "consent", "sdk_snippet")
#: Inputs of the tracker's build, deliberately not shipped: the wheel carries its output.
BUILD_INPUTS = ("sdk_snippet/src/", "sdk_snippet/package.json", "sdk_snippet/package-lock.json")
WHEELHOUSE = ROOT / ".venv" / "wheelhouse"
#: The environment of the installed commands: nothing that points back at the source tree but
#: the loopback guard (a folder holding only its sitecustomize.py), which every Python process of
#: the suite runs under, these too.
CLEAN_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": os.environ.get("HOME", "/root"),
    "LANG": "C.UTF-8",
    **loopback_guard.environment(os.environ[loopback_guard.LOG_VARIABLE]),
}


def _source_files() -> list[str]:
    """The packages' files in the work tree (no git needed: a clone may come as an archive),
    without caches and the tracker's node_modules."""
    found = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*"):
            relative = path.relative_to(ROOT).as_posix()
            if path.is_file() and not {"__pycache__", "node_modules"} & set(path.parts):
                found.append(relative)
    return sorted(found)


def _shipped(files: list[str]) -> list[str]:
    """What the installed collector needs: every file of its packages but the build inputs."""
    return [
        name
        for name in files
        if not name.startswith(BUILD_INPUTS) and not name.endswith((".mjs", ".pyc"))
    ]


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(wheel, sdist) built from a copy of the sources, so that the build writes nothing into
    the clone."""
    work = tmp_path_factory.mktemp("release")
    source = work / "source"
    for name in [*_source_files(), "pyproject.toml", "README.md"]:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    # Without isolation the build uses the locked setuptools of this environment.
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(work / "dist"), "."],
        cwd=source,
        check=True,
        capture_output=True,
    )
    wheels = list((work / "dist").glob("mesure-*.whl"))
    sdists = list((work / "dist").glob("mesure-*.tar.gz"))
    assert len(wheels) == len(sdists) == 1
    yield wheels[0], sdists[0]


def test_the_sdist_and_the_wheel_hold_every_file_the_collector_needs(
    release: tuple[Path, Path],
) -> None:
    wheel, sdist = release
    files = _source_files()
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = set(archive.namelist())
    missing = [name for name in _shipped(files) if name not in in_wheel]
    assert not missing, f"not in the wheel: {missing}"
    # The wheel was built from the sdist, but say it plainly: the sdist rebuilds everything.
    with tarfile.open(sdist) as archive:
        top = archive.getnames()[0].split("/")[0]
        in_sdist = {name.removeprefix(f"{top}/") for name in archive.getnames()}
    missing = [name for name in [*_shipped(files), "pyproject.toml"] if name not in in_sdist]
    assert not missing, f"not in the sdist: {missing}"
    # Nothing of the work tree's tooling or tests rides along in the wheel.
    assert not [name for name in in_wheel if name.startswith(("tests/", "examples/"))]
    assert "consent/vectors/resolve.json" in in_wheel
    assert "sdk_snippet/dist/m.js" in in_wheel


def _run(*args: str | Path, cwd: Path) -> str:
    done = subprocess.run(
        [str(arg) for arg in args], cwd=cwd, env=CLEAN_ENV, capture_output=True, text=True
    )
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_installed_wheel_serves_collects_and_reports(
    release: tuple[Path, Path], tmp_path: Path
) -> None:
    wheel, _sdist = release
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    pip = (venv / "bin" / "python", "-m", "pip", "--disable-pip-version-check")
    _run(*pip, "install", "--no-index", "--find-links", WHEELHOUSE, "--require-hashes",
         "-r", REQUIREMENTS / "app.txt", cwd=tmp_path)  # fmt: skip
    _run(*pip, "install", "--no-index", "--no-deps", wheel, cwd=tmp_path)
    where = _run(
        venv / "bin" / "python",
        "-c",
        "import collector, consent, sdk_snippet; "
        "print(collector.__file__, consent.__file__, sdk_snippet.__file__)",
        cwd=tmp_path,
    )
    for module in where.split():
        assert Path(module).is_relative_to(venv), module

    data, port = tmp_path / "data", free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [venv / "bin" / "mesure", "serve", "--data", data, "--port", str(port),
             "--workers", "1"],
            cwd=tmp_path, env=CLEAN_ENV, stdout=output, stderr=output, start_new_session=True,
        )  # fmt: skip
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"user-agent": BROWSER_UA}
        ) as client:
            _wait_healthy(client, process, log)
            hit = {"site": "localhost", "url": f"http://localhost:{port}/from-the-wheel"}
            assert client.post("/api/hit", json=hit).status_code == 202

            printed = log.read_text()
            password = printed.split("Dashboard account owner@localhost, password ")[1].split()[0]
            login = client.post("/login", json={"email": "owner@localhost", "password": password})
            assert login.status_code == 200, login.text
            page = client.get("/")
            assert page.status_code == 200 and "/static/app.js" in page.text
            # Files the installed package serves from its own data: the dashboard's scripts
            # and the tracker build.
            assert client.get("/static/app.js").status_code == 200
            tracker = client.get("/m.js")
            assert tracker.status_code == 200
            assert tracker.content == (ROOT / "sdk_snippet" / "dist" / "m.js").read_bytes()

            pages = client.get(
                "/api/v1/breakdown", params={"site": "localhost", "period": "today", "by": "page"}
            )
            assert pages.status_code == 200, pages.text
            rows = {row["value"]: row for row in pages.json()["rows"]}
            assert rows["/from-the-wheel"]["metrics"]["pageviews"] == 1
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)


def _wait_healthy(client: httpx.Client, process: subprocess.Popen[bytes], log: Path) -> None:
    for _attempt in range(600):  # a bound, not a timing: normally a few attempts
        if process.poll() is not None:
            break
        try:
            if client.get("/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError(f"the installed mesure serve did not come up:\n{log.read_text()}")
