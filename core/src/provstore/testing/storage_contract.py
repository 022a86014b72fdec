"""The contract every storage backend passes: its lifecycle (create, open, migrate, maintain, erase).

:class:`StorageBackendContract` is a base class of pytest tests. Subclass it in a test module whose name pytest
collects, set ``backend_class`` and implement the two data hooks::

    import pytest
    from provstore.testing import StorageBackendContract

    class TestMyStorageContract(StorageBackendContract):
        backend_class = MyStorageBackend

        def write_data(self, profile):
            with self.opened(profile) as storage:
                storage.set_something('contract', 'marker')

        def has_data(self, storage):
            return storage.get_something('contract') == 'marker'

Override the ``profile`` fixture when the backend's options have no usable defaults (a database server, for
example), and :meth:`StorageBackendContract.storage_paths` when the backend keeps files outside the profile's
folder and its ``filepath`` option.

What ``read_only`` means, as the contract checks it: the content of a read-only storage never changes through
its backend. Its storage can be created (``initialise`` of a storage that does not exist: an empty archive,
say) and erased whole, but resetting it, migrating it from an older version, a maintenance that is not a dry
run, and every write through an open instance raise :class:`~provstore.exceptions.ReadOnlyStorageError`.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from provstore.config import Profile
from provstore.exceptions import ConfigError, ReadOnlyStorageError, StorageError
from provstore.options import Option
from provstore.registry import NAME_PATTERN
from provstore.repository import MaintenanceReport
from provstore.storage import StorageBackend
from provstore.testing.profiles import new_profile

__all__ = ['StorageBackendContract']


# -- the contract -----------------------------------------------------------------------------------------------


class StorageBackendContract:
    """The behaviour every :class:`~provstore.storage.StorageBackend` must show.

    Subclass it (with a name starting with ``Test``), set :attr:`backend_class` and implement :meth:`write_data`
    and :meth:`has_data`. Every test starts from a profile whose storage does not exist and erases it afterwards.
    """

    backend_class: ClassVar[type[StorageBackend]]
    """The backend class under test."""

    # -- fixtures and hooks -----------------------------------------------------------------------------------

    @pytest.fixture
    def profile(self, tmp_path: Path) -> Profile:
        """A profile of :attr:`backend_class` with its default options and a fresh folder; override if needed."""
        return new_profile(self.backend_class, tmp_path / 'profile')

    @pytest.fixture(autouse=True)
    def _erase_afterwards(self, profile: Profile) -> Iterator[None]:
        """Erase the profile's storage after each test, whatever the test left."""
        yield
        self.backend_class.erase(profile)

    @pytest.fixture
    def storage(self, profile: Profile) -> Iterator[StorageBackend]:
        """The profile's storage, initialised and open; closed after the test."""
        self.backend_class.initialise(profile)
        storage = self.backend_class(profile)
        try:
            yield storage
        finally:
            storage.close()

    def write_data(self, profile: Profile) -> None:
        """Put something recognisable by :meth:`has_data` into the profile's initialised storage.

        Any means will do: a read-only backend's tests write it with whatever makes the backend's files.
        """
        raise NotImplementedError(f'{type(self).__name__} must implement `write_data(profile)`')

    def has_data(self, storage: StorageBackend) -> bool:
        """Return whether the open ``storage`` holds what :meth:`write_data` put there."""
        raise NotImplementedError(f'{type(self).__name__} must implement `has_data(storage)`')

    def storage_paths(self, profile: Profile) -> list[Path]:
        """Return the folders and files where the profile's storage lives: its folder and option ``filepath``."""
        paths = [profile.folder]
        filepath = profile.storage_config.get('filepath')
        if filepath:
            paths.append(Path(filepath))
        return paths

    # -- helpers ----------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def opened(self, profile: Profile) -> Iterator[StorageBackend]:
        """Open the profile's storage for the block and close it afterwards."""
        storage = self.backend_class(profile)
        try:
            yield storage
        finally:
            storage.close()

    def snapshot(self, profile: Profile) -> dict[str, bytes | None]:
        """Return every folder (``None``) and file (its bytes) under :meth:`storage_paths`, by path.

        An SQLite ``-shm`` file counts by its presence only: it is the shared-memory index of a write-ahead log,
        whose read marks change when the database is merely read.
        """
        result: dict[str, bytes | None] = {}
        for root in self.storage_paths(profile):
            paths = [root, *root.rglob('*')] if root.is_dir() else [root] if root.exists() else []
            for path in paths:
                result[str(path)] = None if path.is_dir() or path.name.endswith('-shm') else path.read_bytes()
        return result

    # -- declarations -----------------------------------------------------------------------------------------

    def test_name_and_summary(self) -> None:
        """The class has a valid ``name`` (lower-case words joined by dots) and a one-line summary docstring."""
        assert isinstance(self.backend_class.name, str)
        assert NAME_PATTERN.fullmatch(self.backend_class.name), self.backend_class.name
        assert self.backend_class.__doc__
        assert self.backend_class.__doc__.strip().splitlines()[0].strip()
        assert isinstance(self.backend_class.read_only, bool)

    def test_options_are_declared(self) -> None:
        """``options`` is a tuple of :class:`~provstore.options.Option` with unique names, each with help text."""
        options = self.backend_class.options
        assert isinstance(options, tuple)
        assert all(isinstance(option, Option) for option in options)
        names = [option.name for option in options]
        assert len(set(names)) == len(names), f'duplicate option names in {names}'
        assert all(name.isidentifier() for name in names), names
        assert all(option.help.strip() for option in options), [option.name for option in options if not option.help]

    def test_validate_config_fills_defaults(self, profile: Profile) -> None:
        """Options left out of a valid configuration come back with their defaults; given ones are kept."""
        given = self.backend_class.validate_config(dict(profile.storage_config), 'the contract')
        assert set(given) == {option.name for option in self.backend_class.options}
        assert self.backend_class.validate_config(given, 'the contract') == given
        minimal = {option.name: given[option.name] for option in self.backend_class.options if option.required}
        validated = self.backend_class.validate_config(minimal, 'the contract')
        assert set(validated) == set(given)
        for option in self.backend_class.options:
            expected = given[option.name] if option.required else option.default
            assert validated[option.name] == expected, option.name

    def test_validate_config_rejects_unknown_option(self, profile: Profile) -> None:
        """An unknown key is a ConfigError naming it and where it was found."""
        config = {**profile.storage_config, 'no_such_option': 1}
        with pytest.raises(ConfigError, match=r'the contract.*no_such_option'):
            self.backend_class.validate_config(config, 'the contract')

    def test_version_head(self) -> None:
        """``version_head`` is a non-empty string, the same on every call."""
        head = self.backend_class.version_head()
        assert isinstance(head, str)
        assert head
        assert self.backend_class.version_head() == head

    # -- creating and opening ---------------------------------------------------------------------------------

    def test_version_profile_before_initialise(self, profile: Profile) -> None:
        """A storage that was never initialised has no version."""
        assert self.backend_class.version_profile(profile) is None

    def test_open_before_initialise_fails(self, profile: Profile) -> None:
        """Opening a storage that does not exist is a StorageError naming the profile."""
        with pytest.raises(StorageError, match=re.escape(repr(profile.name))):
            self.backend_class(profile)

    def test_initialise_creates_storage_at_head(self, profile: Profile) -> None:
        """``initialise`` of a new storage returns True and leaves it at the head version."""
        assert self.backend_class.initialise(profile) is True
        assert self.backend_class.version_profile(profile) == self.backend_class.version_head()

    def test_initialise_existing_keeps_storage(self, profile: Profile) -> None:
        """``initialise`` of an existing storage returns False and keeps its version, figures and data."""
        self.backend_class.initialise(profile)
        self.write_data(profile)
        with self.opened(profile) as storage:
            info = storage.get_info()
        assert self.backend_class.initialise(profile) is False
        assert self.backend_class.version_profile(profile) == self.backend_class.version_head()
        with self.opened(profile) as storage:
            assert storage.get_info() == info
            assert self.has_data(storage)

    def test_open_after_initialise(self, storage: StorageBackend, profile: Profile) -> None:
        """An initialised storage opens: an open instance of the class, for the profile, that has no data yet."""
        assert isinstance(storage, self.backend_class)
        assert storage.is_closed is False
        assert storage.profile == profile
        assert self.has_data(storage) is False

    def test_two_instances_share_storage(self, storage: StorageBackend, profile: Profile) -> None:
        """A second instance opened on the same profile sees the same storage; closing it leaves the first open."""
        self.write_data(profile)
        with self.opened(profile) as other:
            assert other.get_info() == storage.get_info()
            assert self.has_data(other)
        assert storage.is_closed is False
        assert self.has_data(storage)

    # -- closing ----------------------------------------------------------------------------------------------

    def test_close(self, storage: StorageBackend) -> None:
        """``close`` marks the instance closed, may be repeated, and makes it unusable (StorageError)."""
        storage.close()
        assert storage.is_closed is True
        storage.close()
        assert storage.is_closed is True
        with pytest.raises(StorageError, match='closed'):
            storage.get_info()
        with pytest.raises(StorageError, match='closed'):
            storage.maintain(dry_run=True)
        with pytest.raises(StorageError, match='closed'):
            storage.check_writable()

    def test_reopen_after_close(self, storage: StorageBackend, profile: Profile) -> None:
        """After an instance is closed, the storage opens again with the same figures and data."""
        self.write_data(profile)
        info = storage.get_info()
        storage.close()
        with self.opened(profile) as again:
            assert again.is_closed is False
            assert again.get_info() == info
            assert self.has_data(again)

    # -- migrating --------------------------------------------------------------------------------------------

    def test_migrate_when_current_is_noop(self, profile: Profile) -> None:
        """Migrating a storage at the head version keeps its version, figures and data, and it still opens."""
        self.backend_class.initialise(profile)
        self.write_data(profile)
        with self.opened(profile) as storage:
            info = storage.get_info()
        self.backend_class.migrate(profile)
        assert self.backend_class.version_profile(profile) == self.backend_class.version_head()
        with self.opened(profile) as storage:
            assert storage.get_info() == info
            assert self.has_data(storage)

    def test_migrate_missing_storage_fails(self, profile: Profile) -> None:
        """Migrating a storage that does not exist is a StorageError naming the profile, and creates nothing."""
        with pytest.raises(StorageError, match=re.escape(repr(profile.name))):
            self.backend_class.migrate(profile)
        assert self.backend_class.version_profile(profile) is None

    # -- figures and maintenance ------------------------------------------------------------------------------

    @pytest.mark.parametrize('detailed', [False, True])
    def test_get_info_is_json(self, storage: StorageBackend, detailed: bool) -> None:
        """``get_info`` returns a non-empty dict that survives a JSON round trip unchanged."""
        info = storage.get_info(detailed=detailed)
        assert isinstance(info, dict)
        assert info
        assert json.loads(json.dumps(info)) == info

    @pytest.mark.parametrize('full', [False, True])
    def test_maintain_dry_run_changes_nothing(self, storage: StorageBackend, profile: Profile, full: bool) -> None:
        """A dry run reports what it would do (a MaintenanceReport) and leaves every file as it was."""
        self.write_data(profile)
        before = self.snapshot(profile)
        assert before, 'the storage has no files under storage_paths(); override it'
        report = storage.maintain(full=full, dry_run=True)
        assert self.snapshot(profile) == before
        assert isinstance(report, MaintenanceReport)
        assert report.dry_run is True
        assert report.live is (not full)
        assert all(isinstance(step, str) for step in report.steps)
        assert json.loads(json.dumps(report.details)) == report.details

    @pytest.mark.parametrize('full', [False, True])
    def test_maintain(self, storage: StorageBackend, profile: Profile, full: bool) -> None:
        """Maintenance returns a MaintenanceReport and keeps the data; a read-only storage refuses and is unchanged."""
        self.write_data(profile)
        if self.backend_class.read_only:
            before = self.snapshot(profile)
            with pytest.raises(ReadOnlyStorageError, match=re.escape(repr(profile.name))):
                storage.maintain(full=full)
            assert self.snapshot(profile) == before
            return
        report = storage.maintain(full=full)
        assert isinstance(report, MaintenanceReport)
        assert report.dry_run is False
        assert report.live is (not full)
        assert all(isinstance(step, str) for step in report.steps)
        assert json.loads(json.dumps(report.details)) == report.details
        assert self.has_data(storage)
        with self.opened(profile) as again:
            assert self.has_data(again)

    def test_check_writable(self, storage: StorageBackend, profile: Profile) -> None:
        """``check_writable`` raises ReadOnlyStorageError naming the profile exactly when the backend is read-only."""
        if self.backend_class.read_only:
            with pytest.raises(ReadOnlyStorageError, match=re.escape(repr(profile.name))):
                storage.check_writable()
        else:
            storage.check_writable()
            assert storage.is_closed is False

    # -- erasing and resetting --------------------------------------------------------------------------------

    def test_erase(self, profile: Profile) -> None:
        """Erasing removes the storage and its data: no version, opening fails, erasing again is fine."""
        self.backend_class.initialise(profile)
        self.write_data(profile)
        self.backend_class.erase(profile)
        assert self.backend_class.version_profile(profile) is None
        with pytest.raises(StorageError, match=re.escape(repr(profile.name))):
            self.backend_class(profile)
        self.backend_class.erase(profile)
        assert self.backend_class.version_profile(profile) is None
        assert self.backend_class.initialise(profile) is True
        with self.opened(profile) as storage:
            assert self.has_data(storage) is False

    def test_erase_missing_storage(self, profile: Profile) -> None:
        """Erasing a storage that was never created does nothing and raises nothing."""
        self.backend_class.erase(profile)
        assert self.backend_class.version_profile(profile) is None

    def test_initialise_reset(self, profile: Profile) -> None:
        """``initialise(reset=True)`` gives a fresh, empty storage; a read-only storage refuses and is unchanged."""
        self.backend_class.initialise(profile)
        self.write_data(profile)
        if self.backend_class.read_only:
            before = self.snapshot(profile)
            with pytest.raises(ReadOnlyStorageError, match=re.escape(repr(profile.name))):
                self.backend_class.initialise(profile, reset=True)
            assert self.snapshot(profile) == before
            with self.opened(profile) as storage:
                assert self.has_data(storage)
            return
        assert self.backend_class.initialise(profile, reset=True) is True
        assert self.backend_class.version_profile(profile) == self.backend_class.version_head()
        with self.opened(profile) as storage:
            assert self.has_data(storage) is False
