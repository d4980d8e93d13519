"""The ``mesure`` command: the main group and one module per command family."""
