"""The scripts of ``examples/aiida_scripts`` print under aiida-core what they print with provstore (their ``.out``
files); here aiida-core is installed, so the comparison always runs (``tests/aiida_scripts_run.py``)."""

from __future__ import annotations

from aiida_scripts_run import test_script_prints_the_same_with_aiida_core

__all__ = ['test_script_prints_the_same_with_aiida_core']
