"""Helpers shared by the core's tests: the source of small plugins to install with ``fake_site``."""

from __future__ import annotations


def archive_plugin(*names: str) -> str:
    """Return the source of a hook module that registers one small concrete archive format per name."""
    classes = '\n'.join(
        f'''
    class Format{index}(ArchiveFormat):
        """The {name} test format."""

        name = {name!r}
        latest_version = '1'

        def read_version(self, path):
            return '1'
'''
        for index, name in enumerate(names)
    )
    listed = ', '.join(f'Format{index}' for index in range(len(names)))
    return f"""
    from provstore import hookimpl
    from provstore.archive import ArchiveFormat
{classes}

    @hookimpl
    def register_archive_formats():
        return [{listed}]
"""
