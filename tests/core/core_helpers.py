"""Helpers shared by the core's tests: the source of small plugins to install with ``fake_site``."""

from __future__ import annotations


def archive_plugin(*names: str) -> str:
    """Return the source of a hook module that registers one small concrete archive format per name."""
    classes = '\n'.join(
        f'''
    class Format{index}(ArchiveFormat):
        """The {name} test format."""

        name = {name!r}

        @classmethod
        def version_head(cls):
            return '1'

        @classmethod
        def versions_readable(cls):
            return ('1',)

        @classmethod
        def read_metadata(cls, path):
            return ArchiveMetadata(cls.name, '1', 'sha256')

        @classmethod
        def open(cls, path):
            raise ArchiveError(f'{{path}}: the {name} test format holds nothing to open')
'''
        for index, name in enumerate(names)
    )
    listed = ', '.join(f'Format{index}' for index in range(len(names)))
    return f"""
    from provstore import hookimpl
    from provstore.archive import ArchiveFormat, ArchiveMetadata
    from provstore.exceptions import ArchiveError
{classes}

    @hookimpl
    def register_archive_formats():
        return [{listed}]
"""
