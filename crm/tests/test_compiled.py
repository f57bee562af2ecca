"""`crm.compiled.CompiledGet` returns what the plain QuerySet.get() returns (issue 5: the PUT's
locking read compiled once). Run on SQLite and PostgreSQL; a Django upgrade that changes the
compiler internals it relies on fails here."""
from __future__ import annotations

import datetime as dt
import gc
import threading
import weakref
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, connections, transaction
from django.db.models import Q
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from billing.models import OpportunityServiceOrder
from crm.compiled import CompiledGet
from opportunities.models import Meeting, Opportunity
from opportunities.services import _opportunity_lock_query, opportunity_lock

pytestmark = pytest.mark.django_db

RESERVATION = 98765


def field_values(obj):
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def typed(values):
    return {key: (type(value), value) for key, value in values.items()}


@pytest.fixture
def opportunity(make_opportunity):
    opportunity = make_opportunity(
        amount=Decimal("1250.50"), c_clinic_history="HC-7", c_date_reservation=dt.date(2026, 3, 2),
        c_appointment="15:30 - 16:00", reservation_id=RESERVATION,
    )
    Meeting.objects.create(
        opportunity=opportunity, reservation_id=RESERVATION, name="Cita", doctor="Dra. Paredes",
        date_start=dt.datetime(2026, 3, 2, 20, 30, tzinfo=dt.timezone.utc),
        date_end=dt.datetime(2026, 3, 2, 21, 0, tzinfo=dt.timezone.utc),
    )
    Meeting.objects.create(opportunity=opportunity, reservation_id=RESERVATION + 1, name="Otra cita")
    return opportunity


@pytest.mark.parametrize("pending", [False, True])
@pytest.mark.parametrize("reservation_id", [None, RESERVATION, RESERVATION + 2])
def test_the_lock_read_matches_the_orm(opportunity, pending, reservation_id):
    OpportunityServiceOrder.objects.create(opportunity=opportunity, service_order_id=1, facturado=True)
    if pending:
        OpportunityServiceOrder.objects.create(opportunity=opportunity, service_order_id=2)
    with transaction.atomic():
        expected = _opportunity_lock_query(opportunity_id=opportunity.pk, reservation_id=reservation_id).get()
        got, meeting = opportunity_lock(opportunity_id=opportunity.pk, reservation_id=reservation_id)
    assert typed(field_values(got)) == typed(field_values(expected))
    assert got.has_pending_service_orders is expected.has_pending_service_orders is pending
    assert got._state.adding is False and got._state.db == "default"
    expected_meeting = getattr(expected, "reservation_meeting", None)
    if reservation_id == RESERVATION:
        assert meeting is not None and expected_meeting is not None
        assert typed(field_values(meeting)) == typed(field_values(expected_meeting))
        assert meeting.doctor == "Dra. Paredes"
        assert meeting.opportunity is got  # the join's reverse side is cached, as the ORM does
    else:
        assert meeting is None and expected_meeting is None


def test_the_lock_read_is_one_logged_query_and_locks(opportunity):
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        opportunity_lock(opportunity_id=opportunity.pk, reservation_id=RESERVATION)
    statements = [q["sql"] for q in captured if q["sql"].startswith("SELECT")]
    assert len(statements) == 1
    if connection.features.has_select_for_update:
        assert 'FOR UPDATE OF "opportunity"' in statements[0]


def test_unknown_id_raises_does_not_exist(db):
    with transaction.atomic(), pytest.raises(Opportunity.DoesNotExist):
        opportunity_lock(opportunity_id="0" * 17, reservation_id=RESERVATION)


@pytest.mark.skipif(not connection.features.has_select_for_update, reason="SQLite has no SELECT ... FOR UPDATE")
@pytest.mark.django_db(transaction=True)  # a test transaction would hide the missing one
def test_a_locking_read_outside_a_transaction_is_refused(opportunity):
    with transaction.atomic():
        opportunity_lock(opportunity_id=opportunity.pk, reservation_id=None)  # compiled now
    for reservation_id in (None, RESERVATION):
        with pytest.raises(TransactionManagementError):
            opportunity_lock(opportunity_id=opportunity.pk, reservation_id=reservation_id)


PK = Opportunity._meta.pk
NAME = Opportunity._meta.get_field("name")
RESERVATION_FIELD = Meeting._meta.get_field("reservation_id")


def test_values_are_checked(db):
    query = CompiledGet(lambda pk: Opportunity.objects.filter(pk=pk), pk=PK)
    with pytest.raises(TypeError):
        query.get(pk=17)
    with pytest.raises(TypeError):
        query.get(pk="a", other=1)
    by_reservation = CompiledGet(lambda r: Meeting.objects.filter(reservation_id=r), r=RESERVATION_FIELD)
    for wrong in (True, "5", 5.0):
        with pytest.raises(TypeError):
            by_reservation.get(r=wrong)
    with pytest.raises(ImproperlyConfigured):
        CompiledGet(lambda when: Opportunity.objects.filter(created_at__gte=when),
                    when=Opportunity._meta.get_field("created_at"))


def test_a_value_that_never_reaches_the_sql_is_refused(db):
    ignores = CompiledGet(lambda pk, r: Opportunity.objects.filter(pk=pk), pk=PK, r=RESERVATION_FIELD)
    with pytest.raises(ImproperlyConfigured, match="did not reach"):
        ignores.get(pk="a", r=1)


def test_a_value_django_rewrites_is_refused(make_opportunity):
    """`contains` wraps the value in %...% (and escapes it): replaying it as is would be wrong."""
    make_opportunity(name="abc")
    contains = CompiledGet(lambda n: Opportunity.objects.filter(name__contains=n), n=NAME)
    with pytest.raises(ImproperlyConfigured, match="rewrote"):
        contains.get(n="b")


@pytest.mark.parametrize("value", ["a_c", "ABC", "a%"])
def test_iexact_is_refused_where_django_escapes_it_and_exact_elsewhere(make_opportunity, value):
    make_opportunity(name="abc")
    iexact = CompiledGet(lambda n: Opportunity.objects.filter(name__iexact=n), n=NAME)
    try:
        got = iexact.get(n=value)
    except ImproperlyConfigured:
        assert connection.vendor == "sqlite"  # LIKE ... ESCAPE: the value is escaped
        return
    except Opportunity.DoesNotExist:
        got = None
    expected = Opportunity.objects.filter(name__iexact=value).first()
    assert got == expected


def test_a_constant_equal_to_a_sentinel_stays_a_constant(make_opportunity):
    """The first sentinel of an integer parameter is 11: a constant 11 must not be replaced."""
    opportunity = make_opportunity()
    Meeting.objects.create(opportunity=opportunity, reservation_id=11, name="once")
    Meeting.objects.create(opportunity=opportunity, reservation_id=500, name="twice")
    query = CompiledGet(
        lambda r: Meeting.objects.filter(Q(reservation_id=r) & ~Q(reservation_id=11)), r=RESERVATION_FIELD
    )
    assert query.get(r=500).name == "twice"
    with pytest.raises(Meeting.DoesNotExist):
        query.get(r=11)


@pytest.mark.parametrize("value", [0, -1, 2**31, 2**63, 10**30])
def test_integers_outside_the_column_range_behave_as_the_orm(opportunity, value):
    """Django turns an out-of-range integer into an empty result; the compiled query defers to it."""
    by_reservation = CompiledGet(lambda r: Meeting.objects.filter(reservation_id=r), r=RESERVATION_FIELD)
    by_reservation.get(r=RESERVATION)  # compiled
    with pytest.raises(Meeting.DoesNotExist):
        by_reservation.get(r=value)


def test_prefetch_and_values_are_refused(db):
    with pytest.raises(ImproperlyConfigured):
        CompiledGet(lambda pk: Opportunity.objects.prefetch_related("meetings").filter(pk=pk), pk=PK).get(pk="a")
    with pytest.raises(ImproperlyConfigured):
        CompiledGet(lambda pk: Opportunity.objects.values("name").filter(pk=pk), pk=PK).get(pk="a")


def test_more_than_one_row_raises_multiple_objects_returned(opportunity):
    by_opportunity = CompiledGet(lambda opportunity_id: Meeting.objects.filter(opportunity_id=opportunity_id),
                                 opportunity_id=PK)
    with pytest.raises(Meeting.MultipleObjectsReturned):
        by_opportunity.get(opportunity_id=opportunity.pk)


def test_the_sql_is_compiled_once_and_reused_with_new_values(make_opportunity):
    first, second = make_opportunity(name="Primera"), make_opportunity(name="Segunda")
    query = CompiledGet(lambda pk: Opportunity.objects.filter(pk=pk), pk=PK)
    assert query.get(pk=first.pk).name == "Primera"
    compiled = query.compiled()
    assert query.get(pk=second.pk).name == "Segunda"
    assert query.compiled() is compiled


@pytest.mark.django_db(transaction=True)
def test_threads_share_the_compiled_query_and_no_connection_is_kept(make_opportunity):
    """The first use races between threads; each thread converts rows with its own connection,
    and the compiled query keeps no reference to a finished thread's connection."""
    opportunities = [make_opportunity(name=f"o{index}", amount=Decimal(index)) for index in range(4)]
    query = CompiledGet(lambda pk: Opportunity.objects.filter(pk=pk), pk=PK)
    barrier = threading.Barrier(len(opportunities))
    errors: list[str] = []
    wrappers: list[weakref.ref] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            for _ in range(5):
                got = query.get(pk=opportunities[index].pk)
                assert (got.name, got.amount) == (f"o{index}", Decimal(index))
            wrappers.append(weakref.ref(connections["default"]))
        except Exception as exc:  # reported below
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(opportunities))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    gc.collect()
    assert [ref() for ref in wrappers] == [None] * len(opportunities)
