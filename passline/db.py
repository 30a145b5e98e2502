"""Small helpers for queries the ORM makes dearer than they need to be."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Model, QuerySet

M = TypeVar("M", bound=Model)
Row = TypeVar("Row")


def one_or_none(queryset: QuerySet[M, Row]) -> Row | None:
    """The row a lookup by a unique key finds, or None.

    ``.first()`` orders by the model's default ordering, or adds ``ORDER BY pk``; resolving
    the ordering is the dearest part of compiling such a query (a tenth of the web process's
    CPU per order placed, over its three lookups), and a default ordering over a relation
    (``category__position``) joins a table just to sort one row. Here: ``LIMIT 1``, no order.
    """
    return next(iter(queryset.order_by()[:1]), None)


def insert_rows(objs: Sequence[M], *, returning: Sequence[str] = (), ignore: bool = False) -> list[tuple[Any, ...]]:
    """Insert model instances (of one model) in one statement written out rather than compiled
    by the ORM (``Model.save``, ``bulk_create``: on the hot paths, compiling the insert cost
    more than running it), and return each written row's primary key and ``returning`` fields.

    Field values are prepared as ``save`` prepares them (defaults, ``auto_now``), no signals are
    sent. Without ``ignore`` every row is written, and each instance gets its primary key (the
    rows come back in the order given). With ``ignore`` (``INSERT IGNORE``) a row whose unique
    key exists is left out, and so is any row the database refuses, with only a warning: the
    rows returned are those written (``connection.connection.warning_count()`` says how many
    were not), and setting the keys is the caller's.
    """
    if not objs:
        return []
    meta = objs[0]._meta
    pk = meta.pk
    assert pk is not None
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    values: list[Any] = []
    for obj in objs:
        values += [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields]
    quote = connection.ops.quote_name
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    columns_of = {field.name: str(field.column) for field in meta.concrete_fields}
    back = [quote(str(pk.column)), *(quote(columns_of[name]) for name in returning)]
    sql = (
        f"INSERT {'IGNORE ' if ignore else ''}INTO {quote(meta.db_table)}"
        f" ({', '.join(quote(str(field.column)) for field in fields)})"
        f" VALUES {', '.join([row] * len(objs))} RETURNING {', '.join(back)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        written = [tuple(columns) for columns in cursor.fetchall()]
    if not ignore:
        for obj, columns in zip(objs, written, strict=True):
            mark_saved(obj, columns[0])
    return written


def mark_saved(obj: Model, pk: Any) -> None:
    """An instance written by a statement of ours: its primary key set, and known as saved (a
    later ``save()`` updates it rather than inserting it again)."""
    obj.pk = pk
    obj._state.adding, obj._state.db = False, connection.alias
