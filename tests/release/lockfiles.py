"""Reading the lock files (requirements/*.txt) and the requirements they were made from."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "requirements"

_PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)"
    r"(?:\s*;\s*(?P<marker>[^\\]+?))?\s*\\?$"
)
_HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


@dataclass
class Pin:
    name: NormalizedName
    version: str
    marker: Marker | None
    hashes: list[str] = field(default_factory=list)

    def applies(self) -> bool:
        """Whether this entry is installed on the running interpreter and platform."""
        return self.marker is None or self.marker.evaluate()


def read_lock(path: Path) -> list[Pin]:
    """Every ``name==version [; marker]`` entry of a hashed requirements file, with its hashes."""
    pins: list[Pin] = []
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("--hash="):
            if not pins:
                raise ValueError(f"{path}: a hash before any requirement")
            pins[-1].hashes += _HASH.findall(stripped)
            continue
        match = _PIN.match(stripped)
        if match is None:
            raise ValueError(f"{path}: not an exact pin: {stripped!r}")
        marker = match["marker"]
        pins.append(
            Pin(
                name=canonicalize_name(match["name"]),
                version=match["version"],
                marker=Marker(marker) if marker else None,
            )
        )
    return pins


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def runtime_requirements() -> list[Requirement]:
    return [Requirement(text) for text in pyproject()["project"]["dependencies"]]


def extra_requirements() -> dict[str, list[Requirement]]:
    extras = pyproject()["project"]["optional-dependencies"]
    return {name: [Requirement(text) for text in texts] for name, texts in extras.items()}


def tool_requirements() -> list[Requirement]:
    """requirements/tools.in: what works on the checkout (build backend, build, the locker)."""
    lines = (REQUIREMENTS / "tools.in").read_text().splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


def build_requirements() -> list[Requirement]:
    return [Requirement(text) for text in pyproject()["build-system"]["requires"]]
