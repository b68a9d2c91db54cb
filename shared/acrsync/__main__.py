"""``python -m acrsync``: the same as the ``acrsync`` command."""

from acrsync.cli import main

main()
