"""Settings for the whole test suite: plugin failures raise (strict mode) unless a test turns it off."""

from __future__ import annotations

import os

os.environ.setdefault('PROVSTORE_PLUGINS_STRICT', '1')

# The core-only tox env installs no plugin; its own checks live in tests/core_only and run only there.
collect_ignore = [] if os.environ.get('PROVSTORE_CORE_ONLY') else ['core_only']
