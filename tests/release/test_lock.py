"""The lock files agree with pyproject.toml, and this environment holds exactly what they pin.

`bash requirements/lock.sh` writes them; `tests/setup.sh` installs `requirements/dev.txt` with
every file checked against its hash. These tests fail when a dependency is added, removed or
re-ranged in pyproject.toml without refreshing the lock, and when the environment drifts from it.
"""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from tests.release.lockfiles import (
    REQUIREMENTS,
    ROOT,
    Pin,
    build_requirements,
    extra_requirements,
    read_lock,
    runtime_requirements,
    tool_requirements,
)

APP = REQUIREMENTS / "app.txt"
DEV = REQUIREMENTS / "dev.txt"
#: The production sets: the app alone and with each extra an owner may run it with.
PRODUCTION = {
    APP: (),
    REQUIREMENTS / "clickhouse.txt": ("clickhouse",),
    REQUIREMENTS / "parquet.txt": ("parquet",),
}


def _dev_requirements() -> list[Requirement]:
    extras = [req for reqs in extra_requirements().values() for req in reqs]
    return [*runtime_requirements(), *extras, *tool_requirements(), *build_requirements()]


def _wanted() -> dict[Path, list[Requirement]]:
    """Each lock file and the requirements of pyproject.toml it was made from."""
    extras = extra_requirements()
    wanted = {
        path: [*runtime_requirements(), *(req for name in names for req in extras[name])]
        for path, names in PRODUCTION.items()
    }
    return {**wanted, DEV: _dev_requirements()}


def _closure(requirements: list[Requirement]) -> set[NormalizedName]:
    """Every distribution these requirements pull in on this interpreter, read from the
    installed distributions' own metadata (extras followed)."""
    seen: set[tuple[NormalizedName, frozenset[str]]] = set()
    names: set[NormalizedName] = set()
    pending = [req for req in requirements if req.marker is None or req.marker.evaluate()]
    while pending:
        req = pending.pop()
        name = canonicalize_name(req.name)
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        names.add(name)
        for text in importlib.metadata.distribution(name).requires or []:
            child = Requirement(text)
            wanted = child.marker is None or any(
                child.marker.evaluate({"extra": extra}) for extra in {"", *req.extras}
            )
            if wanted:
                pending.append(child)
    return names


def _applicable(pins: list[Pin]) -> dict[NormalizedName, Pin]:
    return {pin.name: pin for pin in pins if pin.applies()}


def test_every_lock_file_is_known_here() -> None:
    assert set(REQUIREMENTS.glob("*.txt")) == set(_wanted())


def test_every_entry_is_an_exact_pin_with_hashes() -> None:
    for path in _wanted():
        pins = read_lock(path)
        assert pins, path
        for pin in pins:
            assert pin.hashes, f"{path.name}: {pin.name}=={pin.version} has no hash"
        # One version per package and environment: a universal lock forks only by marker.
        keys = [(pin.name, str(pin.marker)) for pin in pins]
        assert len(keys) == len(set(keys)), path


def test_the_locks_satisfy_every_requirement_of_pyproject() -> None:
    for path, requirements in _wanted().items():
        pins = read_lock(path)
        for req in requirements:
            name = canonicalize_name(req.name)
            versions = [pin.version for pin in pins if pin.name == name]
            assert versions, f"{req} is in pyproject.toml but not in {path.name}"
            outside = [v for v in versions if not req.specifier.contains(v, prereleases=True)]
            assert not outside, f"{path.name} pins {name}=={outside} outside {req}"


def test_the_locks_hold_exactly_the_dependency_closure() -> None:
    """Nothing missing and nothing stale: the lock's entries for this interpreter are the
    distributions pyproject.toml's requirements pull in, no more."""
    for path, requirements in _wanted().items():
        pinned = set(_applicable(read_lock(path)))
        needed = _closure(requirements)
        assert not needed - pinned, f"needed but not in {path.name}: {sorted(needed - pinned)}"
        assert not pinned - needed, f"in {path.name} but needed by nothing: {pinned - needed}"


def test_every_lock_agrees_with_the_dev_set_on_versions() -> None:
    """The production sets are resolved inside the dev set (markers may be written differently)."""
    dev: dict[NormalizedName, set[str]] = {}
    for pin in read_lock(DEV):
        dev.setdefault(pin.name, set()).add(pin.version)
    for path in PRODUCTION:
        for pin in read_lock(path):
            assert pin.version in dev.get(pin.name, set()), (
                f"{path.name}: {pin.name}=={pin.version}"
            )


def test_this_environment_holds_exactly_the_locked_set() -> None:
    """What tests/setup.sh installed is the lock, version for version, and nothing else but
    Mesure itself."""
    assert sys.prefix != sys.base_prefix, "the suite runs in the clone's virtual environment"
    pins = _applicable(read_lock(DEV))
    installed = {
        canonicalize_name(dist.metadata["Name"]): dist.version
        for dist in importlib.metadata.distributions(path=sys.path)
        if str(dist.locate_file("")).startswith(sys.prefix)
    }
    assert installed.pop("mesure") == importlib.metadata.version("mesure")
    assert installed == {name: pin.version for name, pin in pins.items()}


def test_the_refresh_command_is_the_one_the_docs_give() -> None:
    development = (ROOT / "docs" / "development.md").read_text(encoding="utf-8")
    assert "bash requirements/lock.sh" in development
    for path in _wanted():
        assert "#    bash requirements/lock.sh\n" in path.read_text()
