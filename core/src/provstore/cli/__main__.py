"""``python -m provstore.cli``: the same as the ``provstore`` command."""

from provstore.cli.main import main

main()
