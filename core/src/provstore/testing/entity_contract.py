"""The contract every :class:`~provstore.storage.EntityStorage` passes: rows, transactions, JSON, links, traversal.

:class:`EntityStorageContract` is a base class of pytest tests, run the way :class:`StorageBackendContract
<provstore.testing.StorageBackendContract>` is: subclass it in a test module pytest collects, set ``backend_class``
(a :class:`~provstore.storage.StorageBackend` that is also an :class:`~provstore.storage.EntityStorage`) and
override the ``profile`` fixture when the backend's options have no usable defaults::

    import pytest
    from provstore.testing import EntityStorageContract, new_profile

    class TestMyEntityStorage(EntityStorageContract):
        backend_class = MyStorageBackend

        @pytest.fixture
        def profile(self, tmp_path):
            return new_profile(MyStorageBackend, tmp_path / 'profile', server='...')

Every test gets the profile's storage initialised, empty and open (fixture ``storage``); it is closed and erased
afterwards. The contract uses nothing but the :class:`~provstore.storage.EntityStorage` interface, so the error
messages it matches are those the interface asks for: what is wrong and which row, column or value (the name of the
table in them is the backend's own).
"""

from __future__ import annotations

import datetime
import itertools
import multiprocessing
import queue
import re
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from provstore.config import Profile
from provstore.exceptions import QueryError, ReadOnlyStorageError, StorageError, ValidationError
from provstore.orm import Dict, Node, QueryBuilder, User, store_nodes
from provstore.storage import EntityStorage, EntityType, StorageBackend
from provstore.storage.textrows import from_text_row
from provstore.testing.profiles import new_profile, opened_storage

__all__ = ['EXTRAS_PER_WRITER', 'EntityStorageContract', 'set_extras']

E = EntityType
UTC = datetime.timezone.utc

EXTRAS_PER_WRITER = 200
"""How many extras each writer of :meth:`EntityStorageContract.test_concurrent_patches_lose_no_key` sets."""


def set_extras(backend_class: type[StorageBackend], profile: Profile, node_id: int, prefix: str, *queues: Any) -> None:
    """Open the storage, wait for the other writers, then set the extras ``<prefix><i>`` one at a time.

    Runs in another process (started with ``spawn``, hence a function of an importable module).

    :param queues: a barrier to wait at with the other writers, and a queue on which to put ``(prefix, None)``
        when done, or ``(prefix, traceback)`` if anything failed.
    """
    barrier, results = queues
    try:
        storage = backend_class(profile)
        try:
            assert isinstance(storage, EntityStorage)
            barrier.wait(60)
            for index in range(EXTRAS_PER_WRITER):
                storage.patch_node_json(node_id, 'extras', {f'{prefix}{index}': index}, [])
        finally:
            storage.close()
    except BaseException:  # reported to the parent, which fails the test
        results.put((prefix, traceback.format_exc()))
    else:
        results.put((prefix, None))


# -- helpers ----------------------------------------------------------------------------------------------------


def nodes(storage: EntityStorage, user: int, count: int, **columns: Any) -> list[int]:
    """Insert ``count`` nodes of ``user`` with the given columns; return their ids."""
    return storage.insert_rows(E.NODE, [{'user_id': user, **columns} for _ in range(count)])


def link(storage: EntityStorage, edges: list[tuple[int, int, str]]) -> None:
    """Insert links ``(input, output, type)``, labelled ``link``."""
    storage.insert_rows(E.LINK, [{'input_id': i, 'output_id': o, 'type': t, 'label': 'link'} for i, o, t in edges])


def in_block(storage: EntityStorage) -> bool:
    """Return whether this thread is inside a transaction block of ``storage`` (asked anew at each call)."""
    return storage.in_transaction


def node_row(storage: EntityStorage, node_id: int) -> dict[str, Any]:
    """Return the row of one node."""
    [row] = storage.get_rows(E.NODE, 'id', [node_id])
    return row


AWKWARD_KEYS = ['a.b', 'q"uote', "single'quote", 'sp ace', 'back\\slash', 'é', '日本語', '$.x', '[0]', '', '😀', 'a\nb']


class EntityStorageContract:
    """The behaviour every entity storage must show, through :class:`~provstore.storage.EntityStorage` alone.

    Subclass it (with a name starting with ``Test``) and set :attr:`backend_class`; override the ``profile``
    fixture when the backend's default options do not work (a database server, for example).
    """

    backend_class: ClassVar[type[StorageBackend]]
    """The backend class under test: a :class:`~provstore.storage.StorageBackend` and an ``EntityStorage``."""

    # -- fixtures ---------------------------------------------------------------------------------------------

    @pytest.fixture
    def profile(self, tmp_path: Path) -> Profile:
        """A profile of :attr:`backend_class` with its default options and a fresh folder; override if needed."""
        return new_profile(self.backend_class, tmp_path / 'profile')

    @pytest.fixture
    def storage(self, profile: Profile) -> Iterator[EntityStorage]:
        """The profile's storage, initialised, empty and open; closed and erased after the test."""
        with opened_storage(self.backend_class, profile, initialise=True, erase=True) as storage:
            assert isinstance(storage, EntityStorage), f'{self.backend_class.__name__} is not an EntityStorage'
            yield storage

    @pytest.fixture
    def user(self, storage: EntityStorage) -> int:
        """The id of a user of ``storage``."""
        return storage.insert_rows(E.USER, [{'email': 'user@example.org'}])[0]

    # -- the interface ----------------------------------------------------------------------------------------

    def test_is_entity_storage(self, storage: EntityStorage) -> None:
        """The backend implements every method of EntityStorage; its repository is one object."""
        assert isinstance(storage, EntityStorage)
        assert not self.backend_class.__abstractmethods__
        assert storage.get_repository() is storage.get_repository()

    def test_iter_rows_by_ascending_id(self, storage: EntityStorage, user: int) -> None:
        """iter_rows yields every row by ascending id, whatever the batch size; the batch size is checked."""
        ids = nodes(storage, user, 25)
        storage.delete_rows(E.NODE, ids[3:5])
        rows = list(storage.iter_rows(E.NODE, batch_size=4))
        assert [row['id'] for row in rows] == ids[:3] + ids[5:]
        assert all(row['user_id'] == user for row in rows)
        assert list(storage.iter_rows(E.COMMENT)) == []
        with pytest.raises(StorageError, match=r'The batch size must be a positive integer, got 0'):
            storage.iter_rows(E.NODE, batch_size=0)

    def test_group_membership(self, storage: EntityStorage, user: int) -> None:
        """Adding members skips members and repeats; removing ignores non-members; other groups are untouched."""
        ids = nodes(storage, user, 6)
        [group, other] = storage.insert_rows(
            E.GROUP, [{'label': 'g', 'user_id': user}, {'label': 'h', 'user_id': user}]
        )
        storage.add_group_nodes(group, ids[:3])
        storage.add_group_nodes(group, ids + ids[:2])
        storage.add_group_nodes(other, ids[:1])
        members = storage.get_rows(E.GROUP_NODE, 'dbgroup_id', [group])
        assert sorted(row['dbnode_id'] for row in members) == ids
        storage.remove_group_nodes(group, [*ids[:4], 10**6])
        assert sorted(row['dbnode_id'] for row in storage.get_rows(E.GROUP_NODE, 'dbgroup_id', [group])) == ids[4:]
        assert len(storage.get_rows(E.GROUP_NODE, 'dbgroup_id', [other])) == 1
        storage.add_group_nodes(group, [])
        storage.remove_group_nodes(group, [])
        assert storage.count_rows(E.GROUP_NODE) == 3

    def test_unknown_entity_type(self, storage: EntityStorage) -> None:
        """An entity type that is not one of EntityType is a StorageError listing the known ones."""
        with pytest.raises(StorageError, match=r"Unknown entity type 'nodes'; the entity types are: user, computer"):
            storage.count_rows('nodes')  # type: ignore[arg-type]
        assert storage.count_rows('node') == 0  # type: ignore[arg-type]

    # -- rows: values and defaults ----------------------------------------------------------------------------------

    def test_row_values_and_aiida_defaults(self, storage: EntityStorage, user: int) -> None:
        """Omitted columns get aiida-core's defaults; uuids are dashed strings, times aware UTC, JSON Python objects."""
        before = datetime.datetime.now(UTC)
        [computer] = storage.insert_rows(E.COMPUTER, [{'label': 'localhost'}])
        [authinfo] = storage.insert_rows(E.AUTHINFO, [{'aiidauser_id': user, 'dbcomputer_id': computer}])
        [node] = nodes(storage, user, 1)
        [other] = nodes(storage, user, 1, dbcomputer_id=computer, process_type='aiida.calculations:core.add')
        link(storage, [(node, other, 'input_calc')])
        [group] = storage.insert_rows(E.GROUP, [{'label': 'g', 'user_id': user}])
        storage.insert_rows(E.GROUP_NODE, [{'dbgroup_id': group, 'dbnode_id': node}])
        [comment] = storage.insert_rows(E.COMMENT, [{'dbnode_id': node, 'user_id': user}])
        [log] = storage.insert_rows(E.LOG, [{'dbnode_id': node, 'loggername': 'aiida', 'levelname': 'INFO'}])
        after = datetime.datetime.now(UTC)

        [user_row] = storage.get_rows(E.USER, 'id', [user])
        assert user_row == {
            'id': user,
            'email': 'user@example.org',
            'first_name': '',
            'last_name': '',
            'institution': '',
        }
        [computer_row] = storage.get_rows(E.COMPUTER, 'id', [computer])
        assert {key: value for key, value in computer_row.items() if key != 'uuid'} == {
            'id': computer,
            'label': 'localhost',
            'hostname': '',
            'description': '',
            'scheduler_type': '',
            'transport_type': '',
            'metadata': {},
        }
        assert str(uuid.UUID(computer_row['uuid'])) == computer_row['uuid']
        [authinfo_row] = storage.get_rows(E.AUTHINFO, 'id', [authinfo])
        assert authinfo_row == {
            'id': authinfo,
            'aiidauser_id': user,
            'dbcomputer_id': computer,
            'metadata': {},
            'auth_params': {},
            'enabled': True,
        }
        row = node_row(storage, node)
        assert isinstance(row['uuid'], str)
        assert len(row['uuid']) == 36
        assert row['uuid'] == str(uuid.UUID(row['uuid']))
        assert (row['node_type'], row['process_type'], row['label'], row['description']) == ('', None, '', '')
        assert (row['attributes'], row['extras'], row['repository_metadata']) == ({}, {}, {})
        assert (row['dbcomputer_id'], row['user_id']) == (None, user)
        for time_column in ('ctime', 'mtime'):
            assert row[time_column].tzinfo == UTC
            assert before <= row[time_column] <= after
        assert row['ctime'] == row['mtime']
        assert node_row(storage, other)['process_type'] == 'aiida.calculations:core.add'
        [group_row] = storage.get_rows(E.GROUP, 'id', [group])
        assert (group_row['type_string'], group_row['description'], group_row['extras']) == ('', '', {})
        assert before <= group_row['time'] <= after
        [comment_row] = storage.get_rows(E.COMMENT, 'id', [comment])
        assert comment_row['content'] == ''
        assert before <= comment_row['ctime'] <= comment_row['mtime'] <= after
        [log_row] = storage.get_rows(E.LOG, 'id', [log])
        assert (log_row['message'], log_row['metadata'], log_row['time'].tzinfo) == ('', {}, UTC)
        [link_row] = storage.get_rows(E.LINK, 'input_id', [node])
        assert {key: value for key, value in link_row.items() if key != 'id'} == {
            'input_id': node,
            'output_id': other,
            'label': 'link',
            'type': 'input_calc',
        }
        assert storage.get_rows(E.GROUP_NODE, 'dbgroup_id', [group])[0]['dbnode_id'] == node

    def test_values_are_stored_as_given(self, storage: EntityStorage, user: int) -> None:
        """Given values are kept: any time zone read back in UTC, naive taken as UTC, uuids normalised, JSON exact."""
        paris = datetime.timezone(datetime.timedelta(hours=1))
        ctime = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=paris)
        naive = datetime.datetime(2024, 5, 6, 7, 8, 9, 654321)
        node_uuid, other_uuid = uuid.uuid4(), uuid.uuid4()
        attributes = {'float': 0.30000000000000004, 'big': 10**20, 'null': None, 'list': [1, None, [True]], 'é': 'ü'}
        [first, second, third] = storage.insert_rows(
            E.NODE,
            [
                {'user_id': user, 'uuid': node_uuid, 'ctime': ctime, 'mtime': naive, 'attributes': attributes},
                {'user_id': user, 'uuid': other_uuid.hex.upper(), 'attributes': None, 'extras': None},
                {
                    'user_id': user,
                    'label': 'x' * 255,
                    'description': 'long ' * 1000,
                    'node_type': 'data.core.dict.Dict.',
                },
            ],
        )
        row = node_row(storage, first)
        assert row['uuid'] == str(node_uuid)
        assert row['ctime'] == ctime
        assert row['ctime'].tzinfo == UTC
        assert row['mtime'] == naive.replace(tzinfo=UTC)
        assert row['attributes'] == attributes
        second_row = node_row(storage, second)
        assert (second_row['uuid'], second_row['attributes'], second_row['extras']) == (str(other_uuid), None, None)
        assert node_row(storage, third)['label'] == 'x' * 255
        with pytest.raises(StorageError, match=r'Cannot insert 1 rows into node: .*(?i:unique)'):
            storage.insert_rows(E.NODE, [{'user_id': user, 'uuid': str(node_uuid).upper()}])

    def test_text_rows_are_the_rows_in_text_form(self, storage: EntityStorage, user: int) -> None:
        """``iter_text_rows`` gives every row as ``iter_rows`` does, JSON as text and times as UTC text; ``ids``
        selects rows; ``insert_text_rows`` stores text rows as ``insert_rows`` stores the rows they stand for."""
        paris = datetime.timezone(datetime.timedelta(hours=1))
        attributes = {'float': 0.30000000000000004, 'big': 10**20, 'null': None, 'list': [1, None, [True]], 'é': 'ü'}
        ids = storage.insert_rows(
            E.NODE,
            [
                {
                    'user_id': user,
                    'ctime': datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=paris),
                    'attributes': attributes,
                    'extras': {'_aiida_hash': 'x', 'k': [1]},
                },
                {'user_id': user, 'attributes': None, 'extras': None, 'label': 'second'},
                {'user_id': user, 'label': 'third'},
            ],
        )
        texts = list(storage.iter_text_rows(E.NODE, batch_size=2))
        assert [row['id'] for row in texts] == ids
        assert texts[0]['ctime'] == '2024-05-06 06:08:09.123456'
        assert (texts[1]['attributes'], texts[1]['extras']) == (None, None)
        assert [from_text_row(E.NODE, row) for row in texts] == list(storage.iter_rows(E.NODE))
        assert [
            row['id'] for row in storage.iter_text_rows(E.NODE, batch_size=1, ids=[ids[2], 10**9, ids[0], 10**9 + 1])
        ] == [
            ids[0],
            ids[2],
        ]
        copies = [{**row, 'uuid': str(uuid.uuid4())} for row in texts]
        for row in copies:
            del row['id']
        copied = storage.insert_text_rows(E.NODE, copies)
        assert [row['id'] for row in storage.iter_text_rows(E.NODE, ids=copied)] == copied
        for original, copy in zip(ids, copied, strict=True):
            assert {**node_row(storage, copy), 'id': 0, 'uuid': ''} == {
                **node_row(storage, original),
                'id': 0,
                'uuid': '',
            }
        assert node_row(storage, copied[0])['attributes'] == attributes
        [user_text] = storage.iter_text_rows(E.USER, ids=[user])
        assert from_text_row(E.USER, user_text) == storage.get_rows(E.USER, 'id', [user])[0]

    @pytest.mark.parametrize(
        ('column', 'value', 'message'),
        [
            ('attributes', '{"a": 1}, {"b": 2}', '(?i)json'),
            ('attributes', '{"a": ', '(?i)json'),
            ('extras', {'not': 'text'}, 'JSON text'),
            ('ctime', 'yesterday', 'time'),
            ('ctime', datetime.datetime(2024, 1, 1, tzinfo=UTC), 'time'),
        ],
    )
    def test_insert_text_rows_refuses_what_is_not_text_form(
        self, storage: EntityStorage, user: int, column: str, value: Any, message: str
    ) -> None:
        """A JSON column that does not hold one JSON text, or a time that is not time text, is refused with a
        StorageError naming it, and no row of the call is stored."""
        good = {'user_id': user, 'attributes': '{"kept": false}'}
        with pytest.raises(StorageError, match=message):
            storage.insert_text_rows(E.NODE, [good, {**good, column: value}])
        assert storage.count_rows(E.NODE) == 0

    def test_insert_returns_ids_in_row_order(self, storage: EntityStorage) -> None:
        """The ids returned are those of the rows, in the order given, also after rows were deleted in between."""
        first = storage.insert_rows(E.USER, [{'email': f'{index}@x'} for index in range(50)])
        storage.delete_rows(E.USER, first[10:20] + first[-5:])
        emails = [f'new{index}@x' for index in range(3000)]
        ids = storage.insert_rows(E.USER, [{'email': email} for email in reversed(emails)])
        assert len(set(ids)) == 3000
        by_id = {row['id']: row['email'] for row in storage.get_rows(E.USER, 'id', ids)}
        assert [by_id[user_id] for user_id in ids] == list(reversed(emails))
        assert storage.insert_rows(E.USER, []) == []

    @pytest.mark.parametrize(
        ('entity', 'row', 'message'),
        [
            (
                E.NODE,
                {'user_id': 1, 'colour': 'red'},
                r"Table \S+ \(node\) has no column 'colour'; its columns are: ",
            ),
            (E.NODE, {'user_id': 1, 'id': 5}, r'Row 0 to insert into \S+ has an id: ids are given by the database'),
            (E.NODE, {'label': 'no user'}, r"Row 0 to insert into \S+ has no value for column 'user_id'"),
            (E.USER, {}, r"Row 0 to insert into \S+ has no value for column 'email'"),
            (E.NODE, {'user_id': '1'}, r"Row 0 of \S+: column 'user_id' must be an integer, got str '1'"),
            (E.NODE, {'user_id': True}, r"column 'user_id' must be an integer, got bool True"),
            (
                E.NODE,
                {'user_id': 2**31},
                r"column 'user_id' must be an integer from -2147483648 to 2147483647, got 2147",
            ),
            (E.NODE, {'user_id': 1, 'uuid': 'not-a-uuid'}, r"column 'uuid' must be a uuid, got str 'not-a-uuid'"),
            (E.NODE, {'user_id': 1, 'ctime': '2024-01-01'}, r"column 'ctime' must be a datetime, got str"),
            (E.NODE, {'user_id': 1, 'label': None}, r"Row 0 of \S+: column 'label' cannot be None"),
            (E.NODE, {'user_id': 1, 'repository_metadata': None}, r"column 'repository_metadata' cannot be None"),
            (E.NODE, {'user_id': 1, 'attributes': {'x': float('nan')}}, r'is not JSON: Out of range float values'),
            (E.NODE, {'user_id': 1, 'extras': {'x': object()}}, r'is not JSON: Object of type object'),
            (
                E.AUTHINFO,
                {'aiidauser_id': 1, 'dbcomputer_id': 1, 'enabled': 1},
                r"'enabled' must be a boolean, got int",
            ),
            (E.USER, ['email'], r'Row 0 to insert into \S+ is not a mapping: list'),
        ],
    )
    def test_insert_refuses_bad_rows(self, storage: EntityStorage, entity: EntityType, row: Any, message: str) -> None:
        """A row that does not suit its table is a StorageError naming the row and the column; nothing is inserted."""
        storage.insert_rows(E.USER, [{'email': 'someone@x'}])
        with pytest.raises(StorageError, match=message):
            storage.insert_rows(entity, [row])
        assert storage.count_rows(entity) == (1 if entity == E.USER else 0)

    def test_insert_refused_by_the_database(self, storage: EntityStorage, user: int) -> None:
        """Rows the database refuses are a StorageError: a unique value at once, a dangling key when committing.

        One row outside a block is one statement (PostgreSQL runs it in autocommit): its dangling key fails at once.
        """
        with pytest.raises(StorageError, match=r'Cannot insert 2 rows into user: .*(?i:unique)'):
            storage.insert_rows(E.USER, [{'email': 'twice@x'}, {'email': 'twice@x'}])
        with pytest.raises(StorageError, match=r'(was rolled back|Cannot insert 1 rows into node): .*(?i:foreign key)'):
            storage.insert_rows(E.NODE, [{'user_id': user + 1000}])
        with pytest.raises(StorageError, match=r'was rolled back: .*(?i:foreign key)'), storage.transaction():
            nodes(storage, user, 3)
            nodes(storage, user + 1000, 1)
        assert storage.count_rows(E.NODE) == 0
        assert storage.count_rows(E.USER) == 1

    # -- one rule for every backend ------------------------------------------------------------------------------

    def test_values_at_the_limits_of_the_rules(self, storage: EntityStorage, user: int) -> None:
        """What the field rules allow is stored and read back exactly: a 255-character label, the signed 64-bit
        extremes, long non-ASCII text; and the QueryBuilder finds each of them (an archive from any backend must
        import into any other, aiida-core's PostgreSQL included)."""
        author = User.collection(storage).get(pk=user)
        node = Dict(
            {'low': -(2**63), 'high': 2**63 - 1, 'text': 'é' * 300}, label='z' * 255, user=author, storage=storage
        ).store()
        [row] = storage.get_rows(E.NODE, 'id', [node.pk])
        assert row['label'] == 'z' * 255
        assert row['attributes'] == {'low': -(2**63), 'high': 2**63 - 1, 'text': 'é' * 300}
        for field, value in (('attributes.high', 2**63 - 1), ('attributes.low', -(2**63)), ('label', 'z' * 255)):
            query = QueryBuilder(storage).append(Dict, filters={field: value}, project='id')
            assert query.all(flat=True) == [node.pk], field

    @pytest.mark.parametrize(
        ('attributes', 'label', 'message'),
        [
            ({}, 'x' * 1_000_000, r'label has 1000000 characters, more than the 255 its column holds'),
            ({}, 'a\x00b', r'label contains a NUL character'),
            ({'a': ['ok', 'x\x00']}, '', r'attributes\.a\[1\] contains a NUL character'),
            ({'k\x00': 1}, '', r"attributes: the key 'k\\x00' contains a NUL character"),
            ({'x': 2**70}, '', r'attributes\.x is 1180591620717411303424, outside the signed 64-bit range'),
        ],
    )
    def test_values_no_backend_holds_are_refused_before_writing(
        self, storage: EntityStorage, user: int, attributes: dict[str, Any], label: str, message: str
    ) -> None:
        """A NUL character, a text longer than its column or an integer beyond 64 bits is a ValidationError naming
        the field, raised before any row or object is written, whatever the backend could hold; a query filtering
        on such a value is a QueryError."""
        author = User.collection(storage).get(pk=user)
        node = Dict(attributes, label=label, user=author, storage=storage)
        node.base.repository.put_object_from_bytes(b'never written', 'file.txt')
        objects = sorted(storage.get_repository().list_objects())
        with pytest.raises(ValidationError, match=rf'^node {node.uuid}: {message}'):
            store_nodes([Dict({'fine': 1}, user=author, storage=storage), node], storage=storage)
        assert storage.count_rows(E.NODE) == 0
        assert sorted(storage.get_repository().list_objects()) == objects
        with pytest.raises(QueryError, match=r'(outside the signed 64-bit range|NUL character)'):
            QueryBuilder(storage).append(Node, filters={'attributes.x': {'in': [1, 2**70]}}).all()
        with pytest.raises(QueryError, match=r'NUL character'):
            QueryBuilder(storage).append(Node, filters={'label': 'a\x00b'}).all()

    # -- rows: update, get, iterate, count, delete --------------------------------------------------------------------

    def test_update_rows_sets_only_the_given_columns(self, storage: EntityStorage, user: int) -> None:
        """Only given columns change; a node's mtime becomes now unless given; rows with other columns go together."""
        old = datetime.datetime(2020, 1, 1, tzinfo=UTC)
        ids = nodes(storage, user, 3, ctime=old, mtime=old, label='old', attributes={'a': 1})
        before = datetime.datetime.now(UTC)
        storage.update_rows(
            E.NODE,
            [
                {'id': ids[0], 'label': 'new', 'extras': {'e': None}},
                {'id': ids[1], 'attributes': None, 'mtime': old},
                {'id': ids[2]},
            ],
        )
        first, second, third = (node_row(storage, node) for node in ids)
        assert (first['label'], first['extras'], first['attributes'], first['ctime']) == (
            'new',
            {'e': None},
            {'a': 1},
            old,
        )
        assert first['mtime'] >= before
        assert (second['label'], second['attributes'], second['mtime']) == ('old', None, old)
        assert (third['label'], third['mtime']) == ('old', old)
        storage.update_rows(E.USER, [{'id': user, 'first_name': 'Ada'}])
        assert storage.get_rows(E.USER, 'id', [user])[0]['first_name'] == 'Ada'

    def test_update_rows_in_bulk(self, storage: EntityStorage, user: int) -> None:
        """Many rows are updated, each with its own values."""
        ids = nodes(storage, user, 12_000)
        storage.update_rows(E.NODE, [{'id': node, 'label': f'n{node}'} for node in ids])
        assert {row['label'] for row in storage.get_rows(E.NODE, 'id', ids)} == {f'n{node}' for node in ids}

    @pytest.mark.parametrize(
        ('rows', 'message'),
        [
            ([{'label': 'x'}], r'Row 0 to update in \S+ has no id'),
            ([{'id': 'one', 'label': 'x'}], r"The ids of rows to update in \S+ must be integers, got str 'one'"),
            ([{'id': 0, 'colour': 'x'}], r"Table \S+ \(node\) has no column 'colour'"),
            ([{'id': 0, 'label': 5}], r"Row 0 of \S+: column 'label' must be a string"),
            ([{'id': 0, 'label': 'a'}, {'id': 0, 'label': 'b'}], r'Row 1 to update in \S+: id \d+ appears more than'),
            ([{'id': 0, 'label': 'a'}, {'id': -7, 'label': 'b'}], r'No node with id -7 in \S+: nothing was updated'),
        ],
    )
    def test_update_rows_refuses_bad_rows(
        self, storage: EntityStorage, user: int, rows: list[dict[str, Any]], message: str
    ) -> None:
        """Bad rows, or ids with no row, are a StorageError; then no row is changed."""
        [node] = nodes(storage, user, 1, label='kept')
        for row in rows:
            if row.get('id') == 0:
                row['id'] = node
        with pytest.raises(StorageError, match=message):
            storage.update_rows(E.NODE, rows)
        assert node_row(storage, node)['label'] == 'kept'

    def test_get_rows_by_any_column(self, storage: EntityStorage, user: int) -> None:
        """Rows are found by id, uuid (any form), string, integer and time columns; unknown values find nothing."""
        when = datetime.datetime(2021, 2, 3, 4, 5, 6, 789, tzinfo=UTC)
        ids = nodes(storage, user, 4, label='a', ctime=when)
        ids += nodes(storage, user, 2, label='b' * 255)
        rows = storage.get_rows(E.NODE, 'id', [*ids[:2], 10**6])
        assert sorted(row['id'] for row in rows) == ids[:2]
        uuids = [row['uuid'] for row in rows]
        assert {row['id'] for row in storage.get_rows(E.NODE, 'uuid', [uuid.UUID(uuids[0]), uuids[1].upper()])} == set(
            ids[:2]
        )
        assert len(storage.get_rows(E.NODE, 'uuid', [str(uuid.uuid4())])) == 0
        assert len(storage.get_rows(E.NODE, 'label', ['a', 'c'])) == 4
        assert len(storage.get_rows(E.NODE, 'label', ['b' * 255])) == 2
        assert storage.get_rows(E.NODE, 'label', ['b' * 300]) == []
        assert len(storage.get_rows(E.NODE, 'user_id', [user])) == 6
        assert len(storage.get_rows(E.NODE, 'ctime', [when])) == 4
        assert storage.get_rows(E.NODE, 'id', []) == []

    @pytest.mark.parametrize(
        ('column', 'values', 'message'),
        [
            ('colour', [1], r"Table \S+ \(node\) has no column 'colour'; its columns are: id, uuid, node_type"),
            ('attributes', [{}], r"Column 'attributes' of \S+ holds JSON: rows cannot be looked up by it"),
            ('id', ['1'], r"Looking up rows of \S+ by 'id': a value must be an integer, got str '1'"),
            ('id', [2**40], r"by 'id': a value must be an integer from -2147483648 to 2147483647, got 1099511627776"),
            ('uuid', ['abc'], r"Looking up rows of \S+ by 'uuid': a value must be a uuid, got str 'abc'"),
            ('label', [None], r"by 'label': a value must be a string, got NoneType None"),
            (['id'], [1], r"Table \S+ \(node\) has no column \['id'\]"),
        ],
    )
    def test_get_rows_refuses_bad_lookups(
        self, storage: EntityStorage, column: Any, values: list[Any], message: str
    ) -> None:
        """An unknown column (user-reachable), a JSON column or a value of the wrong kind is a one-line StorageError."""
        with pytest.raises(StorageError, match=message):
            storage.get_rows(E.NODE, column, values)

    def test_count_and_delete_rows(self, storage: EntityStorage, user: int) -> None:
        """Rows are counted and deleted by id; deleting an output node takes its links with it (ON DELETE CASCADE)."""
        first, second, third = nodes(storage, user, 3)
        link(storage, [(first, second, 'create'), (second, third, 'create')])
        assert (storage.count_rows(E.NODE), storage.count_rows(E.LINK)) == (3, 2)
        storage.delete_rows(E.NODE, [third])
        assert (storage.count_rows(E.NODE), storage.count_rows(E.LINK)) == (2, 1)
        with pytest.raises(StorageError, match=r'was rolled back: .*(?i:foreign key)'):
            storage.delete_rows(E.NODE, [first])
        assert storage.count_rows(E.NODE) == 2
        storage.delete_rows(E.NODE, [])
        with pytest.raises(StorageError, match=r"The ids of rows to delete from \S+ must be integers, got str 'x'"):
            storage.delete_rows(E.NODE, ['x'])  # type: ignore[list-item]

    # -- rows: find by prefix -------------------------------------------------------------------------------------

    def test_find_rows_by_text_prefix(self, storage: EntityStorage, user: int) -> None:
        """A text prefix is exact (case-sensitive, wildcards are plain characters); rows come newest first."""
        kinds = ['data.core.int.Int.', 'data.core.dict.Dict.', 'data.a_b%c.X.', 'data.aXbYc.X.', 'Data.core.int.Int.']
        ids = storage.insert_rows(E.NODE, [{'user_id': user, 'node_type': kind, 'label': 'ü'} for kind in kinds])
        ids += nodes(storage, user, 1, node_type='process.workflow.W.', label='\U0010ffff\U0010ffffx')

        def found(prefix: str, **kwargs: Any) -> list[int]:
            return [row['id'] for row in storage.find_rows(E.NODE, 'node_type', prefix, **kwargs)]

        assert found('data.core.') == [ids[1], ids[0]]
        assert found('data.a_b%') == [ids[2]]
        assert found('data.a_') == [ids[2]]
        assert found('Data.') == [ids[4]]
        assert found('data.core.int.Int.') == [ids[0]]
        assert found('data.core.int.Int.x') == []
        assert found('') == ids[::-1]
        assert found('', limit=2) == ids[:-3:-1]
        assert found('data', limit=0) == []
        assert found('data', equal={'label': 'ü', 'process_type': None}) == [ids[3], ids[2], ids[1], ids[0]]
        assert found('data', equal={'id': ids[1]}) == [ids[1]]
        labels = [row['id'] for row in storage.find_rows(E.NODE, 'label', '\U0010ffff')]
        assert labels == [ids[5]]
        assert [row['id'] for row in storage.find_rows(E.NODE, 'label', 'ü')] == ids[4::-1]
        assert set(storage.find_rows(E.NODE, 'label', 'ü', limit=1)[0]) == set(node_row(storage, ids[0]))

    def test_find_rows_by_uuid_prefix(self, storage: EntityStorage, user: int) -> None:
        """A uuid prefix is hex digits, any case, dashes ignored; from one digit up to the whole uuid."""
        uuids = ['0000abcd-0000-4000-8000-000000000000', '0000abce-0000-4000-8000-000000000000']
        uuids += ['0000abcd-ffff-4fff-bfff-ffffffffffff', 'ffffffff-ffff-4fff-bfff-ffffffffffff']
        ids = storage.insert_rows(E.NODE, [{'user_id': user, 'uuid': value} for value in uuids])

        def found(prefix: str, **kwargs: Any) -> list[int]:
            return [row['id'] for row in storage.find_rows(E.NODE, 'uuid', prefix, **kwargs)]

        assert found('0000ABCD') == [ids[2], ids[0]]
        assert found('0000abc') == [ids[2], ids[1], ids[0]]
        assert found('0000abcd-f') == found('0000abcdf') == [ids[2]]
        assert found(uuids[3]) == found(uuids[3].replace('-', '').upper()) == [ids[3]]
        assert found('f') == [ids[3]]
        assert found('') == ids[::-1]
        assert found('0', limit=1) == [ids[2]]
        assert found('1') == []
        assert found('0', equal={'uuid': uuids[1]}) == [ids[1]]
        assert [row['id'] for row in storage.find_rows(E.USER, 'email', 'user@')] == [user]

    @pytest.mark.parametrize(
        ('column', 'prefix', 'options', 'message'),
        [
            ('colour', 'x', {}, r"Table \S+ \(node\) has no column 'colour'"),
            ('user_id', '1', {}, r"Column 'user_id' of \S+ is not text or a uuid: rows cannot be found by a prefix"),
            ('ctime', '2020', {}, r"Column 'ctime' of \S+ is not text or a uuid"),
            ('attributes', 'x', {}, r"Column 'attributes' of \S+ is not text or a uuid"),
            (
                'uuid',
                'abcg',
                {},
                r"A uuid prefix of \S+.uuid must be at most 32 hex digits \(dashes allowed\), got 'abcg'",
            ),
            ('uuid', 'a' * 33, {}, r'must be at most 32 hex digits'),
            ('uuid', 'a%', {}, r"got 'a%'"),
            ('label', 1, {}, r'A prefix of \S+.label must be a string, got int'),
            ('label', 'x', {'limit': -1}, r'The limit of rows must be a non-negative integer or None, got -1'),
            ('label', 'x', {'limit': True}, r'The limit of rows must be a non-negative integer or None, got True'),
            ('label', 'x', {'equal': {'extras': {}}}, r"Column 'extras' of \S+ holds JSON: rows cannot be looked up"),
            ('label', 'x', {'equal': {'user_id': 'me'}}, r"where 'user_id' is a value: it must be an integer, got str"),
            ('label', 'x', {'equal': {'shape': 1}}, r"Table \S+ \(node\) has no column 'shape'"),
        ],
    )
    def test_find_rows_refusals(
        self, storage: EntityStorage, column: str, prefix: Any, options: Any, message: str
    ) -> None:
        """Unknown columns, columns without prefixes, bad prefixes, limits and values are one-line StorageErrors."""
        with pytest.raises(StorageError, match=message):
            storage.find_rows(E.NODE, column, prefix, **options)

    # -- transactions ---------------------------------------------------------------------------------------------

    def test_transaction_commits_or_rolls_back(self, storage: EntityStorage) -> None:
        """A block is committed when it ends and rolled back, whole, when it raises."""
        with storage.transaction():
            assert in_block(storage)
            storage.insert_rows(E.USER, [{'email': 'kept@x'}])
        assert not in_block(storage)
        with pytest.raises(RuntimeError, match='undo'), storage.transaction():
            storage.insert_rows(E.USER, [{'email': 'gone@x'}])
            storage.update_rows(
                E.USER, [{'id': storage.get_rows(E.USER, 'email', ['kept@x'])[0]['id'], 'last_name': 'L'}]
            )
            raise RuntimeError('undo')
        assert [(row['email'], row['last_name']) for row in storage.iter_rows(E.USER)] == [('kept@x', '')]

    def test_nested_blocks_are_savepoints(self, storage: EntityStorage) -> None:
        """An exception inside a nested block undoes only that block; the outer one goes on and commits."""
        with storage.transaction():
            storage.insert_rows(E.USER, [{'email': 'outer@x'}])
            with pytest.raises(RuntimeError, match='inner'), storage.transaction():
                storage.insert_rows(E.USER, [{'email': 'inner@x'}])
                with storage.transaction():
                    storage.insert_rows(E.USER, [{'email': 'innermost@x'}])
                raise RuntimeError('inner')
            assert storage.in_transaction
            with storage.transaction():
                storage.insert_rows(E.USER, [{'email': 'second@x'}])
        assert sorted(row['email'] for row in storage.iter_rows(E.USER)) == ['outer@x', 'second@x']

    def test_failed_method_inside_a_block_leaves_it_usable(self, storage: EntityStorage) -> None:
        """A method the database refuses inside a block undoes only itself, on PostgreSQL as on SQLite."""
        with storage.transaction():
            storage.insert_rows(E.USER, [{'email': 'a@x'}])
            with pytest.raises(StorageError, match=r'Cannot insert 1 rows into user: .*(?i:unique)'):
                storage.insert_rows(E.USER, [{'email': 'a@x'}])
            storage.insert_rows(E.USER, [{'email': 'b@x'}])
        assert sorted(row['email'] for row in storage.iter_rows(E.USER)) == ['a@x', 'b@x']

    def test_outside_a_block_each_method_is_its_own_transaction(self, storage: EntityStorage) -> None:
        """Without a block, what a method did is committed when it returns, even if the next one fails."""
        storage.insert_rows(E.USER, [{'email': 'first@x'}])
        with pytest.raises(StorageError, match=r'(?i:unique)'):
            storage.insert_rows(E.USER, [{'email': 'first@x'}])
        assert not storage.in_transaction
        assert storage.count_rows(E.USER) == 1

    def test_read_only_storage_refuses_every_write(self, storage: EntityStorage, profile: Profile, user: int) -> None:
        """On a read-only storage every write raises ReadOnlyStorageError; reads work, also inside a block."""
        read_only_class = type('ReadOnly', (type(storage),), {'read_only': True, 'name': 'test.read_only'})
        [node] = nodes(storage, user, 1)
        [group] = storage.insert_rows(E.GROUP, [{'label': 'g', 'user_id': user}])
        read_only: Any = read_only_class(profile)
        name = re.escape(repr(profile.name))
        try:
            writes: list[Callable[[], Any]] = [
                lambda: read_only.insert_rows(E.USER, [{'email': 'x@x'}]),
                lambda: read_only.insert_rows(E.USER, []),
                lambda: read_only.update_rows(E.NODE, [{'id': node, 'label': 'x'}]),
                lambda: read_only.delete_rows(E.NODE, [node]),
                lambda: read_only.patch_node_json(node, 'extras', {'a': 1}, []),
                lambda: read_only.add_group_nodes(group, [node]),
                lambda: read_only.remove_group_nodes(group, [node]),
                lambda: read_only.delete_nodes([node]),
            ]
            for write in writes:
                with pytest.raises(ReadOnlyStorageError, match=rf'The storage of profile {name} .* is read-only'):
                    write()
            with read_only.transaction():
                assert read_only.count_rows(E.NODE) == 1
                with pytest.raises(ReadOnlyStorageError, match='is read-only'):
                    read_only.insert_rows(E.USER, [{'email': 'x@x'}])
            assert read_only.traverse([node], ['create'], []) == {node}
            assert read_only.get_links([node], 'outgoing') == []
            assert [row['id'] for row in read_only.iter_rows(E.NODE)] == [node]
        finally:
            read_only.close()
        assert node_row(storage, node)['extras'] == {}

    def test_closed_storage_refuses_everything(self, storage: EntityStorage) -> None:
        """Every method of a closed storage raises StorageError."""
        assert isinstance(storage, StorageBackend)
        storage.close()
        with pytest.raises(StorageError, match=r'is closed'):
            storage.count_rows(E.NODE)
        with pytest.raises(StorageError, match=r'is closed'), storage.transaction():
            pass

    # -- JSON patches ---------------------------------------------------------------------------------------------

    def test_patch_sets_and_deletes_awkward_keys(self, storage: EntityStorage, user: int) -> None:
        """Keys with dots, quotes, backslashes, spaces, unicode are set and deleted; nulls and nested values stay."""
        existing = {'kept': 1, 'é': 'old', 'q"uote': 'old', 'nested': {'a': 1, 'b': 2}, 'gone': True, 'null': None}
        [node] = nodes(storage, user, 1, extras=existing)
        values: list[Any] = [None, {'deep': {'x': None}}, [1, None], 0.30000000000000004, 10**20, True, 'text', -1]
        updates = {key: values[index % len(values)] for index, key in enumerate(AWKWARD_KEYS)}
        updates['nested'] = {'c': None}
        storage.patch_node_json(node, 'extras', updates, ['gone', 'not there'])
        expected = {'kept': 1, 'null': None, **updates}
        assert node_row(storage, node)['extras'] == expected
        storage.patch_node_json(node, 'extras', {}, AWKWARD_KEYS[::2])
        for key in AWKWARD_KEYS[::2]:
            del expected[key]
        assert node_row(storage, node)['extras'] == expected
        storage.patch_node_json(node, 'extras', {key: 'again' for key in AWKWARD_KEYS}, [])
        assert node_row(storage, node)['extras'] == {**expected, **dict.fromkeys(AWKWARD_KEYS, 'again')}
        assert node_row(storage, node)['attributes'] == {}

    def test_patch_rules(self, storage: EntityStorage, user: int) -> None:
        """A key both deleted and set ends up set; attributes too; mtime becomes now; an empty patch changes nothing."""
        old = datetime.datetime(2020, 1, 1, tzinfo=UTC)
        [node, empty, null] = nodes(storage, user, 3, attributes={'a': 1, 'b': 2}, mtime=old)
        storage.update_rows(E.NODE, [{'id': null, 'attributes': None, 'mtime': old}])
        storage.patch_node_json(node, 'attributes', {'a': 'new'}, ['a', 'b'])
        row = node_row(storage, node)
        assert row['attributes'] == {'a': 'new'}
        assert row['mtime'] > old
        storage.patch_node_json(empty, 'attributes', {}, [])
        assert node_row(storage, empty)['mtime'] == old
        storage.patch_node_json(null, 'attributes', {'x': None}, [])
        assert node_row(storage, null)['attributes'] == {'x': None}
        storage.update_rows(E.NODE, [{'id': null, 'attributes': None}])
        storage.patch_node_json(null, 'attributes', {}, ['x'])
        assert node_row(storage, null)['attributes'] == {}

    def test_patch_refusals(self, storage: EntityStorage, user: int) -> None:
        """Missing nodes, other columns, keys that are not strings, values that are not JSON, non-objects: refused."""
        [node] = nodes(storage, user, 1, extras=[1, 2])
        with pytest.raises(StorageError, match=r'No node with id 123456: its extras were not changed'):
            storage.patch_node_json(123456, 'extras', {'a': 1}, [])
        with pytest.raises(
            StorageError, match=r"Only the columns attributes and extras of nodes can be patched, not 'label'"
        ):
            storage.patch_node_json(node, 'label', {'a': 1}, [])  # type: ignore[arg-type]
        with pytest.raises(StorageError, match=r'Keys of attributes to set must be strings, got int 1'):
            storage.patch_node_json(node, 'attributes', {1: 1}, [])  # type: ignore[dict-item]
        with pytest.raises(StorageError, match=r'Keys of attributes to delete must be strings, got int 2'):
            storage.patch_node_json(node, 'attributes', {}, [2])  # type: ignore[list-item]
        with pytest.raises(
            StorageError, match=r"The value of attributes key 'x' of node \d+ is not JSON: Out of range"
        ):
            storage.patch_node_json(node, 'attributes', {'x': float('inf')}, [])
        with pytest.raises(StorageError, match=r'The extras of node \d+ are not a JSON object: list'):
            storage.patch_node_json(node, 'extras', {'a': 1}, [])
        assert node_row(storage, node)['extras'] == [1, 2]

    @pytest.mark.slow
    def test_concurrent_patches_lose_no_key(self, storage: EntityStorage, profile: Profile, user: int) -> None:
        """Two processes each setting 200 extras of one node at the same time: all 400 keys are there (aiida #6262)."""
        [node] = nodes(storage, user, 1, extras={'before': 0})
        context = multiprocessing.get_context('spawn')
        barrier = context.Barrier(2)
        results = context.Queue()
        processes = [
            context.Process(target=set_extras, args=(type(storage), profile, node, prefix, barrier, results))
            for prefix in ('first-', 'second-')
        ]
        for process in processes:
            process.start()
        outcomes = {}
        try:
            for _ in processes:
                prefix, error = results.get(timeout=240)
                outcomes[prefix] = error
        except queue.Empty:
            pytest.fail(f'a writer did not finish: {outcomes}')
        finally:
            for process in processes:
                process.join(60)
                if process.is_alive():
                    process.kill()
                    process.join()
            results.close()
            results.join_thread()
        assert outcomes == {'first-': None, 'second-': None}
        extras = node_row(storage, node)['extras']
        assert extras == {'before': 0} | {
            f'{prefix}{index}': index for prefix in outcomes for index in range(EXTRAS_PER_WRITER)
        }

    # -- links and groups -----------------------------------------------------------------------------------------

    def test_get_links_by_direction_and_type(self, storage: EntityStorage, user: int) -> None:
        """Links ending at or starting from the nodes are returned, of the given types only (None: any, []: none)."""
        data, calc, out, other = nodes(storage, user, 4)
        link(storage, [(data, calc, 'input_calc'), (calc, out, 'create'), (other, calc, 'input_calc')])

        def pairs(rows: list[dict[str, Any]]) -> set[tuple[int, int, str]]:
            return {(row['input_id'], row['output_id'], row['type']) for row in rows}

        assert pairs(storage.get_links([calc], 'incoming')) == {(data, calc, 'input_calc'), (other, calc, 'input_calc')}
        assert pairs(storage.get_links([calc, data], 'outgoing')) == {(calc, out, 'create'), (data, calc, 'input_calc')}
        assert pairs(storage.get_links([calc, out], 'incoming', ['create'])) == {(calc, out, 'create')}
        assert storage.get_links([calc], 'incoming', []) == []
        assert storage.get_links([], 'incoming') == []
        assert set(storage.get_links([out], 'incoming')[0]) == {'id', 'input_id', 'output_id', 'label', 'type'}
        with pytest.raises(StorageError, match=r"The direction of links must be 'incoming' or 'outgoing', not 'in'"):
            storage.get_links([calc], 'in')  # type: ignore[arg-type]
        with pytest.raises(StorageError, match=r'Link types must be strings, got int 1'):
            storage.get_links([calc], 'incoming', [1])  # type: ignore[list-item]

    def test_group_membership_refusals(self, storage: EntityStorage, user: int) -> None:
        """A group or node that does not exist is a StorageError naming it; nothing is added."""
        ids = nodes(storage, user, 2)
        [group] = storage.insert_rows(E.GROUP, [{'label': 'g', 'user_id': user}])
        with pytest.raises(StorageError, match=r'No group with id 999'):
            storage.add_group_nodes(999, ids)
        with pytest.raises(StorageError, match=r'No group with id 999'):
            storage.remove_group_nodes(999, ids)
        with pytest.raises(StorageError, match=r'No node with id 777, 778: no node was added to group'):
            storage.add_group_nodes(group, [*ids, 778, 777])
        with pytest.raises(StorageError, match=r"Node ids must be integers, got str '1'"):
            storage.add_group_nodes(group, ['1'])  # type: ignore[list-item]
        assert storage.count_rows(E.GROUP_NODE) == 0

    # -- traversal ------------------------------------------------------------------------------------------------

    def test_traverse_chain_with_depth_limits(self, storage: EntityStorage, user: int) -> None:
        """Along a chain: everything forward from the head, back from the tail, as deep as asked."""
        chain = nodes(storage, user, 6)
        link(storage, [(a, b, 'create') for a, b in itertools.pairwise(chain)])
        assert storage.traverse([chain[0]], ['create'], []) == set(chain)
        assert storage.traverse([chain[-1]], [], ['create']) == set(chain)
        assert storage.traverse([chain[-1]], ['create'], []) == {chain[-1]}
        assert storage.traverse([chain[0]], ['create'], [], max_depth=0) == {chain[0]}
        assert storage.traverse([chain[0]], ['create'], [], max_depth=2) == set(chain[:3])
        assert storage.traverse([chain[3]], ['create'], ['create'], max_depth=1) == set(chain[2:5])
        assert storage.traverse([chain[0], chain[4]], ['create'], [], max_depth=1) == {
            chain[0],
            chain[1],
            chain[4],
            chain[5],
        }

    def test_traverse_diamond_and_cycle(self, storage: EntityStorage, user: int) -> None:
        """A diamond gives each node once; a cycle ends (with and without a depth limit)."""
        top, left, right, bottom, a, b, c = nodes(storage, user, 7)
        link(
            storage,
            [(top, left, 'create'), (top, right, 'create'), (left, bottom, 'create'), (right, bottom, 'create')],
        )
        link(storage, [(a, b, 'call_work'), (b, c, 'call_work'), (c, a, 'call_work')])
        assert storage.traverse([top], ['create'], []) == {top, left, right, bottom}
        assert storage.traverse([bottom], [], ['create']) == {top, left, right, bottom}
        assert storage.traverse([top], ['create'], [], max_depth=1) == {top, left, right}
        assert storage.traverse([left], ['create'], ['create']) == {top, left, right, bottom}
        assert storage.traverse([a], ['call_work'], []) == {a, b, c}
        assert storage.traverse([a], ['call_work'], ['call_work'], max_depth=50) == {a, b, c}

    def test_traverse_follows_link_types_by_direction(self, storage: EntityStorage, user: int) -> None:
        """Forward types are followed from input to output only, backward types from output to input only."""
        data, calc, out, work = nodes(storage, user, 4)
        link(storage, [(data, calc, 'input_calc'), (calc, out, 'create'), (work, calc, 'call_calc')])
        assert storage.traverse([out], [], ['create']) == {out, calc}
        assert storage.traverse([out], [], ['create', 'input_calc']) == {out, calc, data}
        assert storage.traverse([data], ['create'], []) == {data}
        assert storage.traverse([data], ['input_calc', 'create'], []) == {data, calc, out}
        assert storage.traverse([calc], ['create'], ['input_calc']) == {calc, out, data}
        assert storage.traverse([calc], ['input_calc'], ['create']) == {calc}
        assert storage.traverse([out], [], ['create', 'input_calc', 'call_calc']) == {out, calc, data, work}
        assert storage.traverse([calc], [], []) == {calc}

    def test_traverse_start_set(self, storage: EntityStorage, user: int) -> None:
        """Start nodes that do not exist are not returned; no start gives nothing; arguments are checked."""
        [node] = nodes(storage, user, 1)
        assert storage.traverse([node, 10**6], ['create'], ['create']) == {node}
        assert storage.traverse([], ['create'], []) == set()
        with pytest.raises(StorageError, match=r'must be a non-negative integer or None: -1'):
            storage.traverse([node], ['create'], [], max_depth=-1)
        with pytest.raises(StorageError, match=r'Start node ids must be integers from -2147483648 to 2147483647, got'):
            storage.traverse([2**31], ['create'], [])
        with pytest.raises(StorageError, match=r"Start node ids must be integers, got str 'x'"):
            storage.traverse(['x'], ['create'], [])  # type: ignore[list-item]
        with pytest.raises(StorageError, match=r'Forward link types must be strings, got int 3'):
            storage.traverse([node], [3], [])  # type: ignore[list-item]

    def test_traverse_a_large_dag(self, storage: EntityStorage, user: int) -> None:
        """A DAG of 10,000 nodes, each linked to the next two (many diamonds), is walked in one query each way."""
        ids = nodes(storage, user, 10_000)
        edges = [(ids[i], ids[j], 'create') for i in range(len(ids)) for j in (i + 1, i + 2) if j < len(ids)]
        link(storage, edges)
        assert storage.traverse([ids[0]], ['create'], []) == set(ids)
        assert storage.traverse([ids[-1]], [], ['create']) == set(ids)
        assert storage.traverse([ids[0]], ['create'], [], max_depth=10) == set(ids[:21])
        assert storage.traverse([ids[5000]], ['create'], ['create'], max_depth=3) == set(ids[4994:5007])

    # -- deleting nodes -------------------------------------------------------------------------------------------

    def test_delete_nodes_with_everything_attached(self, storage: EntityStorage, user: int) -> None:
        """Nodes go with their group memberships, links in and out, comments and logs; nothing else is touched."""
        data, calc, out, keep = nodes(storage, user, 4)
        link(
            storage, [(data, calc, 'input_calc'), (calc, out, 'create'), (keep, calc, 'input_calc'), (keep, data, 'x')]
        )
        [group] = storage.insert_rows(E.GROUP, [{'label': 'g', 'user_id': user}])
        storage.add_group_nodes(group, [data, calc, keep])
        storage.insert_rows(E.COMMENT, [{'dbnode_id': node, 'user_id': user, 'content': 'c'} for node in (calc, keep)])
        storage.insert_rows(
            E.LOG, [{'dbnode_id': node, 'loggername': 'l', 'levelname': 'INFO'} for node in (calc, keep)]
        )
        with pytest.raises(RuntimeError, match='changed my mind'), storage.transaction():
            storage.delete_nodes([calc])
            assert storage.count_rows(E.NODE) == 3
            raise RuntimeError('changed my mind')
        assert storage.count_rows(E.NODE) == 4
        storage.delete_nodes([calc, data])
        assert [row['id'] for row in storage.iter_rows(E.NODE)] == [out, keep]
        assert storage.count_rows(E.LINK) == 0
        assert [row['dbnode_id'] for row in storage.iter_rows(E.GROUP_NODE)] == [keep]
        assert [row['dbnode_id'] for row in storage.iter_rows(E.COMMENT)] == [keep]
        assert [row['dbnode_id'] for row in storage.iter_rows(E.LOG)] == [keep]
        storage.delete_nodes([])
        storage.delete_nodes([10**6])
        assert storage.count_rows(E.NODE) == 2

    def test_delete_many_nodes_in_a_transaction(self, storage: EntityStorage, user: int) -> None:
        """Deleting 5,000 linked nodes inside a block, with a traversal choosing them, leaves the rest consistent."""
        ids = nodes(storage, user, 10_000)
        link(storage, [(a, b, 'create') for a, b in itertools.pairwise(ids)])
        with storage.transaction():
            doomed = storage.traverse([ids[5000]], ['create'], [])
            storage.delete_nodes(sorted(doomed))
        assert storage.count_rows(E.NODE) == 5000
        assert storage.count_rows(E.LINK) == 4999
