"""Fixtures of the sqlite_zip tests: the members of a real archive, and zips written on the spot."""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from corpus import Corpus, build_corpus
from sqlite_zip_helpers import SIMPLE


@pytest.fixture
def simple_members() -> dict[str, bytes]:
    """The members of a real main_0001 archive (without macOS entries), to rebuild altered copies from."""
    with zipfile.ZipFile(SIMPLE) as handle:
        return {
            info.filename: handle.read(info)
            for info in handle.infolist()
            if not info.is_dir() and not info.filename.startswith('__MACOSX/')
        }


@pytest.fixture
def write_zip(tmp_path: Path) -> Callable[[Iterable[tuple[str, bytes]], str], Path]:
    """Write a zip of ``(name, bytes)`` members, in order, duplicates allowed, and return its path."""

    def write(members: Iterable[tuple[str, bytes]], name: str = 'made.aiida') -> Path:
        path = tmp_path / name
        with zipfile.ZipFile(path, 'w', compression=zipfile.ZIP_DEFLATED) as handle:
            for member, content in members:
                info = zipfile.ZipInfo(member)
                info.compress_type = zipfile.ZIP_DEFLATED
                handle.writestr(info, content)
        return path

    return write


@pytest.fixture(scope='session')
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """Every archive of the corpus of hostile and odd archives (``corpus.py``), built once per session."""
    folder = tmp_path_factory.mktemp('corpus')
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('PROVSTORE_PATH', str(folder / 'config'))
        return build_corpus(folder)
