"""Hold a profile's lock in a process of its own, for the tests of ``provstore.profile_access``.

Usage: ``python profile_holder.py FOLDER MODE [ANYTHING...]`` (extra arguments only show up in the command line).

``shared`` or ``exclusive``
    Take that lock at once, print ``ready``, hold it until a line or end-of-file arrives on stdin, exit 0.
``try-exclusive``
    Ask for the exclusive lock once, print ``granted`` and exit 0.

A refusal prints ``locked: <message>`` and exits 3.
"""

from __future__ import annotations

import sys

from provstore.exceptions import ProfileLockedError
from provstore.profile_access import ProfileAccess

REFUSED = 3


def main(folder: str, mode: str) -> int:
    """Run the holder; return the exit code."""
    access = ProfileAccess.for_folder(folder)
    try:
        if mode == 'shared':
            access.acquire_shared()
            print('ready', flush=True)
            sys.stdin.readline()
        elif mode == 'exclusive':
            with access.exclusive():
                print('ready', flush=True)
                sys.stdin.readline()
        elif mode == 'try-exclusive':
            with access.exclusive():
                print('granted', flush=True)
        else:
            raise SystemExit(f'unknown mode {mode!r}')
    except ProfileLockedError as exception:
        print(f'locked: {exception}', flush=True)
        return REFUSED
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1], sys.argv[2]))
