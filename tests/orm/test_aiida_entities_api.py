"""Entities as aiida-core users make them: data constructors and their defaults, times given before store, a group's
owner, extras and kind, and what adding an unstored node to a group raises; on ``sqlite_dos`` and ``psql_dos``."""

from __future__ import annotations

import copy
import datetime

import pytest

from provstore.orm import (
    Bool,
    CalcJobNode,
    Data,
    Dict,
    Float,
    Group,
    Int,
    InvalidOperationError,
    List,
    ModificationNotAllowedError,
    QueryBuilder,
    Str,
    User,
)
from provstore.storage import EntityStorage

UTC = datetime.timezone.utc


def test_dict_and_list_take_aiida_cores_keywords(storage: EntityStorage) -> None:
    stored = Dict(dict={'a': 1, 'b': [2]}, storage=storage).store()
    loaded = Dict.collection(storage).get(pk=stored.pk)
    assert isinstance(loaded, Dict)
    assert loaded.get_dict() == {'a': 1, 'b': [2]}
    items = List(list=[1, 'x'], storage=storage).store()
    loaded_items = List.collection(storage).get(pk=items.pk)
    assert isinstance(loaded_items, List)
    assert loaded_items.get_list() == [1, 'x']
    with pytest.raises(TypeError, match='once'):
        Dict({'a': 1}, dict={'b': 2})
    with pytest.raises(TypeError, match='once'):
        List([1], list=[2])
    assert Dict().get_dict() == {}
    assert List().get_list() == []


@pytest.mark.parametrize(('cls', 'empty'), [(Int, 0), (Float, 0.0), (Str, ''), (Bool, False)])
def test_base_types_default_to_their_empty_value(storage: EntityStorage, cls: type[Int], empty: object) -> None:
    node = cls(storage=storage).store()
    loaded = cls.collection(storage).get(pk=node.pk)
    assert isinstance(loaded, cls)
    value = loaded.value
    assert value == empty
    assert type(value) is type(empty)


def test_times_given_before_store_are_kept(storage: EntityStorage) -> None:
    ctime = datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    mtime = datetime.datetime(2021, 6, 7, 8, 9, 10, tzinfo=UTC)
    node = Data(ctime=ctime, mtime=mtime, storage=storage)
    assert (node.ctime, node.mtime) == (ctime, mtime)
    node.store()
    loaded = Data.collection(storage).get(pk=node.pk)
    assert (loaded.ctime, loaded.mtime) == (ctime, mtime)
    assert Data(storage=storage).ctime is None  # as aiida-core: set when the node is stored
    with pytest.raises(TypeError, match='datetime'):
        Data(ctime='2020-01-01')  # type: ignore[arg-type]
    with pytest.raises(ValueError, match='timezone'):
        Data(mtime=datetime.datetime(2020, 1, 1))  # the naive time is what is refused


def test_group_owner_can_change(storage: EntityStorage) -> None:
    other = User('other@example.com', storage=storage).store()
    group = Group('owned', storage=storage).store()
    group.user = other
    assert Group.collection(storage).get(pk=group.pk).user.pk == other.pk
    unstored = Group('later', storage=storage)
    unstored.user = other
    unstored.store()
    assert Group.collection(storage).get(pk=unstored.pk).user.email == 'other@example.com'
    with pytest.raises(TypeError, match='User'):
        group.user = 'nobody'  # type: ignore[assignment]


def test_group_base_extras_and_user_defined(storage: EntityStorage) -> None:
    group = Group('annotated', extras={'a': 1}, storage=storage).store()
    group.base.extras.set('b', [1, 2])
    group.base.extras.set_many({'c': 'x', 'd': None})
    group.base.extras.delete('a')
    loaded = Group.collection(storage).get(pk=group.pk)
    assert loaded.base.extras.all == {'b': [1, 2], 'c': 'x', 'd': None}
    assert loaded.base.extras.get('c') == 'x'
    assert loaded.base.extras.get('missing', 5) == 5
    with pytest.raises(AttributeError, match='missing'):
        loaded.base.extras.get('missing')
    loaded.base.extras.clear()
    assert Group.collection(storage).get(pk=group.pk).extras == {}
    assert not group.is_user_defined()
    assert Group('by hand', type_string='', storage=storage).is_user_defined()


def test_adding_an_unstored_node_to_a_group_raises_a_value_error(storage: EntityStorage) -> None:
    """aiida-core raises ValueError; provstore's error is one, and a ModificationNotAllowedError as before."""
    group = Group('members', storage=storage).store()
    with pytest.raises(ValueError, match='not stored') as caught:
        group.add_nodes([Int(1, storage=storage)])
    assert isinstance(caught.value, ModificationNotAllowedError)
    assert group.count() == 0


def test_deepcopy_of_stored_data_is_an_unstored_clone(storage: EntityStorage) -> None:
    """As aiida-core: copy.deepcopy of data is clone(); a shallow copy, or a copy of a process node, is refused."""
    original = Dict({'a': {'b': [1, 2]}}, label='source', storage=storage)
    original.base.extras.set('kept', False)
    original.store()
    twin = copy.deepcopy(original)
    assert isinstance(twin, Dict)
    assert not twin.is_stored
    assert twin.uuid != original.uuid
    assert (twin.get_dict(), twin.label) == ({'a': {'b': [1, 2]}}, 'source')
    twin['c'] = 3
    twin.store()
    assert 'c' not in Dict.collection(storage).get(pk=original.pk).base.attributes
    with pytest.raises(InvalidOperationError, match='copied'):
        copy.copy(original)
    with pytest.raises(InvalidOperationError, match='data nodes'):
        copy.deepcopy(CalcJobNode(storage=storage))


def test_writes_in_a_query_loop_and_exceptions(storage: EntityStorage) -> None:
    """Each write in a loop over a query commits as it is made (the loop holds no write lock); inside
    ``storage.transaction()`` the loop is all or nothing, as aiida-core's loop is: an exception undoes it all."""
    pks = [Int(number, storage=storage).store().pk for number in range(6)]
    query = QueryBuilder(storage).append(Int, project='*').order_by({Int: 'id'})

    def tag_until_failure(batch_size: int) -> None:
        for number, (node,) in enumerate(query.iterall(batch_size=batch_size)):
            node.base.extras.set('seen', number)
            if number == 3:
                raise RuntimeError('stop')

    def tagged() -> int:
        return QueryBuilder(storage).append(Int, filters={'extras': {'has_key': 'seen'}}).count()

    with pytest.raises(RuntimeError, match='stop'), storage.transaction():
        tag_until_failure(batch_size=2)
    assert tagged() == 0
    with pytest.raises(RuntimeError, match='stop'):
        tag_until_failure(batch_size=2)
    assert tagged() == 4
    assert len(pks) == 6


def test_creation_statistics(storage: EntityStorage) -> None:
    """storage.query().get_creation_statistics() counts nodes in total, by type and by day, as aiida-core's."""
    assert storage.query().get_creation_statistics() == {'total': 0, 'types': {}, 'ctime_by_day': {}}
    other = User('stats@example.com', storage=storage).store()
    Int(1, storage=storage).store()
    Int(2, storage=storage).store()
    Dict({'a': 1}, user=other, ctime=datetime.datetime(2020, 5, 17, 12, tzinfo=UTC), storage=storage).store()
    stats = storage.query().get_creation_statistics()
    assert stats['total'] == 3
    assert stats['types'] == {'data.core.int.Int.': 2, 'data.core.dict.Dict.': 1}
    assert sum(stats['ctime_by_day'].values()) == 3
    assert stats['ctime_by_day']['2020-05-17'] == 1
    assert list(stats['ctime_by_day']) == sorted(stats['ctime_by_day'])
    mine = storage.query().get_creation_statistics(user_pk=other.pk)
    assert mine == {'total': 1, 'types': {'data.core.dict.Dict.': 1}, 'ctime_by_day': {'2020-05-17': 1}}


def test_group_arguments_in_aiida_cores_order(storage: EntityStorage) -> None:
    """Group(label, user, description, type_string, time, extras, backend), positionally as aiida-core takes them."""
    owner = User('owner@example.org', storage=storage).store()
    made = datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    group = Group('runs', owner, 'my runs', None, made, {'kind': 'test'}, storage).store()
    assert (group.label, group.user, group.description, group.type_string) == ('runs', owner, 'my runs', 'core')
    assert group.time == made
    assert group.base.extras.get('kind') == 'test'
    assert Group(label='other', backend=storage).store().storage is storage
    with pytest.raises(TypeError, match='User'):
        Group('bad', 'not a user')  # type: ignore[arg-type]
    with pytest.raises(ValueError, match='timezone-aware'):
        Group('naive', time=datetime.datetime(2020, 1, 1))
    with pytest.raises(ValueError, match='label'):
        Group()
