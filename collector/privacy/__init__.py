"""The privacy-officer toolkit: signed exports, access and erasure requests, retention, key
epochs, audit-log checks and the GDPR Art. 30 register.

Each module is usable from the CLI (:mod:`collector.cli.privacy`) and the JSON API
(:mod:`collector.web.routes.privacy`); the clock, keys and configuration are passed in.
"""

from __future__ import annotations
