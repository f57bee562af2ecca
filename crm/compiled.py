"""Read queries compiled by the ORM once per process, then run with new values (issue 5).

Django compiles a QuerySet to SQL on every evaluation. For the process update's locking read
(about 45 columns, a LEFT JOIN, an EXISTS subquery) that compilation costs more than the
database round trip; it is the same text on every request, only the values differ.
`CompiledGet` builds the QuerySet with the ORM once per database alias, keeps its SQL, and on
each call substitutes the call's values for the placeholders' sentinel values, then turns the
row into model instances with Django's own converters and `select_related` populators (as
`QuerySet.get()` would). The SQL stays the ORM's, per database vendor.

Limits (checked when compiling, `ImproperlyConfigured` otherwise): parameters are `str` or
`int` values (primary keys, integer filters; Django's driver wrappers such as psycopg's `Int4`
are kept), and each sentinel must reach the SQL parameters (a lookup that makes Django drop or
rewrite the value is refused). Uses Django's compiler internals (`select`, `klass_info`,
`annotation_col_map`, `get_converters`, related populators), as `ModelIterable` does; the tests
compare every use with the plain QuerySet, so a Django upgrade that changes them fails there.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators
from django.db.transaction import TransactionManagementError

M = TypeVar("M", bound=Model)

# Rows fetched to tell "one" from "more than one", as QuerySet.get() does with its LIMIT.
_GET_LIMIT = 2


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple[Any, ...]
    slots: dict[str, tuple[tuple[int, type], ...]]  # parameter name -> (position in `params`, type)
    for_update: bool
    model: type[Model]
    col_count: int  # the row's length without extra select columns
    converters: dict[int, tuple[list[Callable[..., Any]], Any]]  # position -> (converters, expression)
    init_list: list[str]  # attnames of the model's columns, in row order
    start: int  # the model's columns are row[start:end]
    end: int
    populators: list[Any]  # select_related objects
    annotation_col_map: dict[str, int]


class CompiledGet(Generic[M]):
    """`QuerySet.get()` of a fixed query shape, compiled once per process and database alias.

    `build(**values)` returns the QuerySet (filters naming each value); `sentinels` maps each
    parameter name to the str or int stand-in used to compile it, which must differ from every
    other parameter of the query (values are placed by position, so any real value works).
    `get(**values)` returns the one model instance (with its `select_related` objects and
    annotations), or raises `model.DoesNotExist` / `model.MultipleObjectsReturned`;
    `TransactionManagementError` for a `select_for_update()` query outside a transaction;
    `TypeError` for missing, unknown or wrongly typed values. One query per call, logged like
    any ORM query.
    """

    def __init__(self, build: Callable[..., QuerySet[M]], **sentinels: str | int) -> None:
        for name, value in sentinels.items():
            if type(value) not in (str, int):
                raise ImproperlyConfigured(f"CompiledGet sentinel {name!r} must be a str or an int")
        self._build = build
        self._sentinels = sentinels
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def _compile(self, using: str) -> _Compiled:
        queryset = self._build(**self._sentinels).using(using).order_by()[:_GET_LIMIT]
        compiler = queryset.query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        params = tuple(params)
        # A sentinel may come back adapted for the driver (Django wraps integers in psycopg's
        # Int4/Int8 on PostgreSQL); each call's value gets the same type.
        slots = {
            name: tuple(
                (i, type(param))
                for i, param in enumerate(params)
                if isinstance(param, type(value)) and not isinstance(param, bool) and param == value
            )
            for name, value in self._sentinels.items()
        }
        missing = [name for name, positions in slots.items() if not positions]
        if missing:
            raise ImproperlyConfigured(f"CompiledGet: {missing} did not reach the SQL parameters of {sql!r}")
        fields = [column[0] for column in compiler.select[: compiler.col_count]]
        if compiler.has_composite_fields(fields):
            raise ImproperlyConfigured("CompiledGet does not support composite fields")
        klass_info = compiler.klass_info
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        return _Compiled(
            sql=sql,
            params=params,
            slots=slots,
            for_update=bool(queryset.query.select_for_update) and compiler.connection.features.has_select_for_update,
            model=klass_info["model"],
            col_count=compiler.col_count,
            converters=compiler.get_converters(fields),
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

    def get(self, *, using: str = DEFAULT_DB_ALIAS, **values: Any) -> M:
        if values.keys() != self._sentinels.keys():
            raise TypeError(f"CompiledGet.get() takes {sorted(self._sentinels)}, got {sorted(values)}")
        for name, value in values.items():
            if type(value) is not type(self._sentinels[name]):
                raise TypeError(f"CompiledGet.get(): {name} must be {type(self._sentinels[name]).__name__}")
        connection = connections[using]
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
        for position, (converters, expression) in compiled.converters.items():
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
