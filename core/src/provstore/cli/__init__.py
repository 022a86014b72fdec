"""The ``provstore`` command line."""

from provstore.cli.main import cli, main

__all__ = ['cli', 'main']
