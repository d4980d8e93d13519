"""``python -m collector`` runs the ``mesure`` command."""

from __future__ import annotations

from collector.cli.main import main

main()
