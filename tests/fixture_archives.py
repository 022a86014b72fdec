"""Where aiida-core's own archives are kept in this repository, and which of them provstore reads."""

from __future__ import annotations

from pathlib import Path

AIIDA_CORE_STATIC = Path(__file__).resolve().parent / 'fixtures' / 'aiida-core-static'
"""aiida-core's archives, copied into the repository (see the README there)."""

READABLE_ARCHIVES = sorted(
    [
        'calcjob__arithmetic.add.aiida',
        'calcjob__arithmetic.add_old.aiida',
        'export__compare__django.aiida',
        'export__compare__sqlalchemy.aiida',
        'export__migrate__export_main_0000_simple.aiida',
        'export__migrate__export_main_0001_simple.aiida',
        'graphs__graph1.aiida',
    ]
)
"""Every archive of export_version main_0000, main_0001 or 1.0 among them."""
