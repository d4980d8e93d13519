"""Puts every Python process the test suite starts under the loopback guard.

``tests/conftest.py`` puts this folder first on ``PYTHONPATH``, so ``site`` imports this module
when any interpreter started with an environment derived from the suite's starts up. The guard
is loaded by its path: the ``tests`` package is not importable everywhere (the installed wheel's
virtual environment). Without ``MESURE_TEST_OUTBOUND_LOG`` it does nothing.
"""

import os

if os.environ.get("MESURE_TEST_OUTBOUND_LOG"):
    import importlib.util

    _path = os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "loopback_guard.py"
    )
    _spec = importlib.util.spec_from_file_location("mesure_loopback_guard", _path)
    assert _spec is not None and _spec.loader is not None
    _guard = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_guard)
    _guard.install()
