"""Backups of a data directory (``mesure backup``, ``backup verify``, ``restore``).

A backup is a directory holding three files: ``data.tar.age`` (``data.tar`` when written with
``--unencrypted``), one tar archive of the data directory's files encrypted in the age format to
every recipient; ``manifest.json``, what the archive holds (each file's size, SHA-256 and mode,
the archive's size and SHA-256 encrypted and not); and ``manifest.sig``, the hex Ed25519
signature of the manifest's exact bytes by the instance's export key.

:mod:`.manifest` holds the manifest's types, :mod:`.recipients` the age keys, :mod:`.archive`
the tar stream written and read, :mod:`.staging` the half-written directories, :mod:`.create`,
:mod:`.check` and :mod:`.restore` the three commands' work.
"""
