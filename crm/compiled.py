"""Read queries compiled by the ORM once per process, then run with new values (issue 5).

Django compiles a QuerySet to SQL on every evaluation. For the process update's locking read
(about 45 columns, a LEFT JOIN, an EXISTS subquery) that compilation costs more than the
database round trip; it is the same text on every request, only the values differ.
`CompiledGet` builds the QuerySet with the ORM once per database alias, keeps its SQL, and on
each call puts the call's values into the parameter positions that belong to them, then turns
the row into model instances with Django's own converters and `select_related` populators (as
`QuerySet.get()` would). The SQL stays the ORM's, per database vendor.

Each parameter is declared with the model field it filters (an integer field, or a CharField /
TextField). Sentinels are derived from it and the query is compiled twice, with two different
sets of sentinels: the SQL text must not change, and a parameter position belongs to a value
only when it carries that value's sentinel unchanged in both compiles. So constants equal to a
sentinel stay constants, and a lookup that makes Django rewrite the value (`iexact` escaping
`%` on SQLite, `contains` wrapping it in `%`) or drop it is refused (`ImproperlyConfigured`).
A call with an integer outside the field's range on this database runs the plain ORM query
instead, which is what decides those cases (Django turns them into an empty result).

Uses Django's compiler internals (`select`, `klass_info`, `annotation_col_map`, the converter
hooks, related populators), as `ModelIterable` does; `crm/tests/test_compiled.py` compares every
use with the plain QuerySet on SQLite and PostgreSQL, so a Django upgrade that changes them fails
there.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import CharField, Field, IntegerField, Model, QuerySet, TextField
from django.db.models.query import ModelIterable, get_related_populators
from django.db.transaction import TransactionManagementError

M = TypeVar("M", bound=Model)

# Rows fetched to tell "one" from "more than one", as QuerySet.get() does with its LIMIT.
_GET_LIMIT = 2


def _sentinels(fields: dict[str, Field], variant: int) -> dict[str, str | int]:
    """Stand-in values for compiling, distinct per parameter and per variant (0 or 1). Integers
    are small and positive (valid for every integer field); the second variant's strings carry
    the characters Django escapes in pattern lookups."""
    values: dict[str, str | int] = {}
    for index, (name, model_field) in enumerate(fields.items()):
        if isinstance(model_field, IntegerField):
            values[name] = 11 + 2 * index + variant
        else:
            values[name] = f"%_\\crm-compiled-{index}-b" if variant else f"crm-compiled-{index}-a"
    return values


def _same_value(param: Any, sentinel: str | int) -> bool:
    return isinstance(param, type(sentinel)) and not isinstance(param, bool) and param == sentinel


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple[Any, ...]
    slots: dict[str, tuple[tuple[int, type], ...]]  # parameter name -> (position in `params`, type)
    for_update: bool
    model: type[Model]
    col_count: int  # the row's length without extra select columns
    columns: list[Any]  # the select expressions, for the converters
    init_list: list[str]  # attnames of the model's columns, in row order
    start: int  # the model's columns are row[start:end]
    end: int
    populators: list[Any]  # select_related objects
    annotation_col_map: dict[str, int]
    # The converters are bound to a connection's `ops`; Django's connections are per thread, so
    # they are cached per thread (gone with it) with the connection they belong to.
    per_thread: threading.local = field(default_factory=threading.local)


class CompiledGet(Generic[M]):
    """`QuerySet.get()` of a fixed query shape, compiled once per process and database alias.

    `build(**values)` returns the QuerySet; `parameters` maps each value's name to the model
    field it is compared with (an `IntegerField` subclass, taking `int`, or a `CharField` /
    `TextField`, taking `str`). `get(**values)` returns the one model instance (with its
    `select_related` objects and annotations), or raises `model.DoesNotExist` /
    `model.MultipleObjectsReturned`; `TransactionManagementError` for a `select_for_update()`
    query outside a transaction; `TypeError` for missing, unknown or wrongly typed values.
    `ImproperlyConfigured` (on first use) for a query this cannot replay faithfully. One query
    per call, logged like any ORM query.
    """

    def __init__(self, build: Callable[..., QuerySet[M]], **parameters: Field) -> None:
        for name, model_field in parameters.items():
            if not isinstance(model_field, (IntegerField, CharField, TextField)):
                raise ImproperlyConfigured(f"CompiledGet parameter {name!r}: integer or text fields only")
        self._build = build
        self._fields = parameters
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def _compile_one(self, using: str, values: dict[str, str | int]) -> tuple[QuerySet, Any, str, tuple]:
        queryset = self._build(**values).using(using).order_by()[:_GET_LIMIT]
        if (
            queryset._iterable_class is not ModelIterable
            or queryset._prefetch_related_lookups
            or queryset._known_related_objects
        ):
            raise ImproperlyConfigured("CompiledGet takes model querysets without prefetch_related or values()")
        compiler = queryset.query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        return queryset, compiler, sql, tuple(params)

    def _compile(self, using: str) -> _Compiled:
        first, second = _sentinels(self._fields, 0), _sentinels(self._fields, 1)
        queryset, compiler, sql, params = self._compile_one(using, first)
        _, _, other_sql, other_params = self._compile_one(using, second)
        if sql != other_sql or len(params) != len(other_params):
            raise ImproperlyConfigured(f"CompiledGet: the SQL depends on the values: {sql!r}")
        slots: dict[str, list[tuple[int, type]]] = {name: [] for name in self._fields}
        for position, (param, other) in enumerate(zip(params, other_params)):
            if type(param) is type(other) and param == other:
                continue  # a constant of the query
            owners = [
                name for name in self._fields if _same_value(param, first[name]) and _same_value(other, second[name])
            ]
            if len(owners) != 1:
                raise ImproperlyConfigured(f"CompiledGet: Django rewrote a value (parameter {position} of {sql!r})")
            slots[owners[0]].append((position, type(param)))
        missing = [name for name, positions in slots.items() if not positions]
        if missing:
            raise ImproperlyConfigured(f"CompiledGet: {missing} did not reach the SQL parameters of {sql!r}")
        columns = [column[0] for column in compiler.select[: compiler.col_count]]
        if compiler.has_composite_fields(columns):
            raise ImproperlyConfigured("CompiledGet does not support composite fields")
        klass_info = compiler.klass_info
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        return _Compiled(
            sql=sql,
            params=params,
            slots={name: tuple(positions) for name, positions in slots.items()},
            for_update=bool(queryset.query.select_for_update) and compiler.connection.features.has_select_for_update,
            model=klass_info["model"],
            col_count=compiler.col_count,
            columns=columns,
            init_list=[column[0].target.attname for column in compiler.select[start:end]],
            start=start,
            end=end,
            populators=get_related_populators(klass_info, compiler.select, using),
            annotation_col_map=dict(compiler.annotation_col_map),
        )

    def compiled(self, using: str = DEFAULT_DB_ALIAS) -> _Compiled:
        """The compiled query for database `using` (compiled on first use)."""
        compiled = self._compiled.get(using)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(using)
                if compiled is None:
                    compiled = self._compiled[using] = self._compile(using)
        return compiled

    @staticmethod
    def _converters(compiled: _Compiled, connection: Any) -> dict[int, tuple[list[Callable[..., Any]], Any]]:
        cached = getattr(compiled.per_thread, "converters", None)
        if cached is not None and cached[0] is connection:
            return cached[1]
        converters = {}
        for position, expression in enumerate(compiled.columns):
            if expression:
                found = connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
                if found:
                    converters[position] = (found, expression)
        compiled.per_thread.converters = (connection, converters)
        return converters

    def get(self, *, using: str = DEFAULT_DB_ALIAS, **values: Any) -> M:
        if values.keys() != self._fields.keys():
            raise TypeError(f"CompiledGet.get() takes {sorted(self._fields)}, got {sorted(values)}")
        connection = connections[using]
        for name, value in values.items():
            if isinstance(self._fields[name], IntegerField):
                if type(value) is not int:
                    raise TypeError(f"CompiledGet.get(): {name} must be an int")
                low, high = connection.ops.integer_field_range(self._fields[name].get_internal_type())
                if (low is not None and value < low) or (high is not None and value > high):
                    # Out of the column's range: the ORM decides (an empty result, in Django 5).
                    return self._build(**values).using(using).get()
            elif type(value) is not str:
                raise TypeError(f"CompiledGet.get(): {name} must be a str")
        compiled = self.compiled(using)  # compiling checks the transaction itself
        if compiled.for_update and connection.get_autocommit():
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        params = list(compiled.params)
        for name, positions in compiled.slots.items():
            value = values[name]
            for position, param_type in positions:
                params[position] = value if type(value) is param_type else param_type(value)
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        model = compiled.model
        if not rows:
            raise model.DoesNotExist(f"{model._meta.object_name} matching query does not exist.")
        if len(rows) > 1:
            raise model.MultipleObjectsReturned(f"get() returned more than one {model._meta.object_name}.")
        row = list(rows[0][: compiled.col_count])
        for position, (converters, expression) in self._converters(compiled, connection).items():
            value = row[position]
            for converter in converters:
                value = converter(value, expression, connection)
            row[position] = value
        obj = model.from_db(using, compiled.init_list, row[compiled.start : compiled.end])
        for populator in compiled.populators:
            populator.populate(row, obj)
        for attr_name, position in compiled.annotation_col_map.items():
            setattr(obj, attr_name, row[position])
        return obj
