"""provstore plugin ``sqlite_zip``: aiida-core's ``.aiida`` archives, read in place as a read-only storage."""
