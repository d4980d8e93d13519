"""One error tree: every exception class of ``collector/`` and ``consent/`` is a
:class:`MesureError`, the docstring of :mod:`collector.errors` draws exactly that tree, and an
HTTP error is answered with the status it is drawn with."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import pkgutil
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import httpx
import pytest
from starlette.requests import Request
from starlette.routing import Route

import collector
import consent
from collector import errors
from collector.errors import HTTPError, MesureError
from collector.web.app import create_app
from tests.support import build_config

#: Exception classes outside the tree, each with why it may be.
OUTSIDE_THE_TREE = {
    # Control flow: raised by _read and caught by _rows, both in that module; never escapes it.
    "collector.privacy.kept_exports._Unreadable": Exception,
    # click's exits: click prints their message and exits with their code (2). They are how a
    # command reports a MesureError it caught, and they never leave click's main.
    "collector.cli.common.ConfigProblem": click.ClickException,
    "collector.cli.backup.BackupProblem": click.ClickException,
}

#: Classes of the tree that are not drawn: private bases that are never raised themselves.
UNDRAWN = {
    # Gives RateLimitedError and UnavailableError their Retry-After header.
    "collector.errors._RetryLaterError",
}

#: Every HTTP error with the status and headers it is answered with.
ANSWERS: dict[str, tuple[int, set[str]]] = {
    "BadRequestError": (400, set()),
    "ReportParameterError": (400, set()),
    "UnauthorizedError": (401, {"www-authenticate"}),
    "ForbiddenError": (403, set()),
    "RequestTimeoutError": (408, set()),
    "PayloadTooLargeError": (413, set()),
    "RateLimitedError": (429, {"retry-after"}),
    "UnavailableError": (503, {"retry-after"}),
    "QueueFullError": (503, {"retry-after"}),
    "WriteFailedError": (503, {"retry-after"}),
}


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def exception_classes() -> dict[str, type[BaseException]]:
    """Every exception class defined in a module of ``collector`` or ``consent``."""
    found: dict[str, type[BaseException]] = {}
    for package in (collector, consent):
        for module_info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if module_info.name.endswith(".__main__"):  # runs the command line when imported
                continue
            module = importlib.import_module(module_info.name)
            for value in vars(module).values():
                if (
                    inspect.isclass(value)
                    and issubclass(value, BaseException)
                    and value.__module__ == module.__name__
                ):
                    found[_qualified(value)] = value
    return found


class Drawn:
    """A class as drawn: its name, its parent's name and the text after it."""

    def __init__(self, name: str, parent: str | None, text: str) -> None:
        self.name, self.parent, self.text = name, parent, text


def drawn_tree(docstring: str) -> dict[str, Drawn]:
    """The tree drawn in the first fenced block of ``docstring``, by class name."""
    block = re.search(r"```\n(.*?)\n```", docstring, re.DOTALL)
    assert block is not None, "collector/errors.py draws no tree"
    drawn: dict[str, Drawn] = {}
    parents: list[str] = []
    for line in block.group(1).splitlines():
        match = re.match(r"^([ │├└─]*)([A-Za-z]\w*)\s*(.*)$", line)
        assert match is not None, line
        depth = len(match.group(1)) // 4
        name = match.group(2)
        assert name not in drawn, f"{name} is drawn twice"
        assert depth <= len(parents), f"{name} is drawn under nothing"
        del parents[depth:]
        drawn[name] = Drawn(name, parents[-1] if parents else None, match.group(3))
        parents.append(name)
    return drawn


def _tree_parent(cls: type) -> str | None:
    """The nearest public MesureError ``cls`` derives from, as the drawing shows it."""
    for base in cls.__mro__[1:]:
        if issubclass(base, MesureError) and not base.__name__.startswith("_"):
            return base.__name__
    return None


def test_every_exception_class_is_a_mesure_error() -> None:
    outside = {
        name: cls
        for name, cls in exception_classes().items()
        if not issubclass(cls, MesureError) and name not in OUTSIDE_THE_TREE
    }
    assert not outside, f"not a MesureError (derive it from one, draw it in errors.py): {outside}"


def test_the_classes_left_outside_exist_and_are_what_they_are_said_to_be() -> None:
    found = exception_classes()
    for name, kind in OUTSIDE_THE_TREE.items():
        assert name in found, f"{name} is gone: take it off the list"
        assert issubclass(found[name], kind), name
        assert not issubclass(found[name], MesureError), f"{name} is in the tree now"


def test_the_docstring_draws_the_tree_and_nothing_else() -> None:
    tree = {
        name: cls
        for name, cls in exception_classes().items()
        if issubclass(cls, MesureError) and name not in UNDRAWN
    }
    by_name = {cls.__name__: cls for cls in tree.values()}
    assert len(by_name) == len(tree), "two errors of the tree have the same name"
    assert errors.__doc__ is not None
    drawn = drawn_tree(errors.__doc__)
    assert sorted(set(by_name) - set(drawn)) == [], "defined but not drawn in collector/errors.py"
    assert sorted(set(drawn) - set(by_name)) == [], "drawn in collector/errors.py but not defined"
    for name, cls in by_name.items():
        assert drawn[name].parent == _tree_parent(cls), f"{name} is drawn under the wrong class"
        if cls is not MesureError:
            assert drawn[name].text, f"{name} is drawn without saying what it is"


def test_the_classes_not_drawn_are_private_and_never_raised_alone() -> None:
    found = exception_classes()
    for name in UNDRAWN:
        assert name in found, f"{name} is gone: take it off the list"
        assert found[name].__name__.startswith("_"), name
        assert found[name].__subclasses__(), f"{name} is no longer a base"


def test_each_http_error_is_drawn_with_its_status() -> None:
    assert errors.__doc__ is not None
    drawn = drawn_tree(errors.__doc__)
    http_errors = {
        cls.__name__: cls
        for cls in exception_classes().values()
        if issubclass(cls, HTTPError) and cls is not HTTPError and not cls.__name__.startswith("_")
    }
    assert set(http_errors) == set(ANSWERS), "a new HTTP error needs its answer in ANSWERS"
    for name, cls in http_errors.items():
        shown: str | None = name
        status = None
        while status is None and shown is not None:  # a subclass drawn without one inherits it
            number = re.match(r"^([1-5][0-9]{2})\b", drawn[shown].text)
            status = int(number.group(1)) if number else None
            shown = drawn[shown].parent
        assert status == cls.status == ANSWERS[name][0], name


def _instance(cls: type[HTTPError]) -> HTTPError:
    if "retry_after" in inspect.signature(cls).parameters:
        return cls("try later", retry_after=7)  # type: ignore[call-arg]
    return cls("refused", field="thing")


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_the_app_answers_an_http_error_with_its_status(tmp_path: Path, name: str) -> None:
    cls = getattr(errors, name)
    app = create_app(build_config(tmp_path))

    async def refuse(request: Request) -> None:
        raise _instance(cls)

    app.router.routes.append(Route("/api/refused", refuse))

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.get("/api/refused")

    # In a thread of its own: a browser test of the session may leave this one's loop running.
    with ThreadPoolExecutor(1) as thread:
        response = thread.submit(asyncio.run, get()).result()
    status, headers = ANSWERS[name]
    assert response.status_code == status
    assert headers <= set(response.headers), response.headers
    if status == 429 or status == 503:
        assert response.headers["retry-after"] == "7"
        assert response.json() == {"error": "try later", "field": None}
    else:
        assert response.json() == {"error": "refused", "field": "thing"}


def test_a_report_parameter_error_is_a_value_error_naming_its_field() -> None:
    # msgspec turns a ValueError raised in __post_init__ into a ValidationError when decoding.
    error = errors.ReportParameterError("`to` is before `from`", field="to")
    assert isinstance(error, ValueError) and isinstance(error, errors.BadRequestError)
    assert (error.status, error.field, str(error)) == (400, "to", "`to` is before `from`")


def test_consent_errors_are_in_the_tree_without_consent_importing_the_collector() -> None:
    # tests/consent checks that consent/ imports nothing of the collector; the root it shares
    # with the collector is declared in consent/errors.py and re-exported by collector.errors.
    from consent.errors import MesureError as consent_root
    from consent.tcf import TCStringError

    assert MesureError is consent_root
    assert issubclass(TCStringError, MesureError) and issubclass(TCStringError, ValueError)
