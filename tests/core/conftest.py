"""Fixtures for the core's tests: fake installed distributions written as real ``*.dist-info`` folders."""

from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_COUNTER = itertools.count()


@pytest.fixture
def fake_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """Return ``install(dist, source, entry_point=None, version='1.0')`` writing a real distribution on sys.path.

    ``source`` is the code of the plugin's hook module; the module gets a unique name, which is returned.
    The entry point (``<entry_point or dist> = <module>``) goes into the ``provstore`` group.
    """
    site = tmp_path / 'site-packages'
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    modules: list[str] = []

    def install(dist: str, source: str, entry_point: str | None = None, version: str = '1.0') -> str:
        module = f'fake_plugin_{dist.replace("-", "_")}_{next(_COUNTER)}'
        (site / f'{module}.py').write_text(textwrap.dedent(source))
        info = site / f'{dist.replace("-", "_")}-{version}.dist-info'
        info.mkdir()
        (info / 'METADATA').write_text(f'Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n')
        (info / 'entry_points.txt').write_text(f'[provstore]\n{entry_point or dist} = {module}\n')
        modules.append(module)
        return module

    yield install
    for module in modules:
        sys.modules.pop(module, None)
