"""Opportunity versions (opportunities/versions.py): bumped once per unit of work that writes
history, never lost under concurrent writers."""

from __future__ import annotations

import pytest
from django.db import connection, connections, transaction

from devtools.testing import at_once
from opportunities.history import HistoryLog
from opportunities.models import ActionHistory, Opportunity
from opportunities.versions import if_match_parse, if_none_match_matches, opportunity_etag

pytestmark = pytest.mark.django_db


def unit_of_work(opportunity: Opportunity, *actions: str) -> list[ActionHistory]:
    with transaction.atomic():
        log = HistoryLog(opportunity=opportunity, user=None)
        for action in actions:
            log.add(action, {})
        return log.flush()


def test_a_unit_of_work_bumps_the_version_once_and_stamps_its_records(make_opportunity):
    opportunity = make_opportunity()
    records = unit_of_work(opportunity, "meeting_created", "closed_won")
    assert opportunity.version == 1 == Opportunity.objects.get().version
    assert [record.opportunity_version for record in records] == [1, 1]
    unit_of_work(opportunity, "invoice_attached")
    assert Opportunity.objects.get().version == 2 and opportunity_etag(opportunity) == '"2"'


def test_a_unit_of_work_without_records_leaves_the_version(make_opportunity, django_assert_num_queries):
    opportunity = make_opportunity()
    with django_assert_num_queries(0):
        assert HistoryLog(opportunity=opportunity, user=None).flush() == []
    assert Opportunity.objects.get().version == 0


def test_a_rolled_back_unit_of_work_leaves_the_version(make_opportunity):
    opportunity = make_opportunity()
    with pytest.raises(RuntimeError), transaction.atomic():
        log = HistoryLog(opportunity=opportunity, user=None)
        log.add("closed_won", {})
        log.flush()
        raise RuntimeError
    assert Opportunity.objects.get().version == 0 and not ActionHistory.objects.exists()


def test_header_parsing():
    assert if_match_parse(None) is None
    parsed = if_match_parse(' "3" , W/"4", "x"')
    assert parsed is not None and parsed.strong == {3} and parsed.newest == 4 and not parsed.any
    star = if_match_parse("*")
    assert star is not None and star.matches(123)
    opportunity = Opportunity(version=4)
    assert if_none_match_matches('W/"4"', opportunity) and not if_none_match_matches('"40"', opportunity)
    assert not if_none_match_matches(None, opportunity) and not if_none_match_matches("4", opportunity)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
def test_concurrent_units_of_work_each_get_their_own_version(make_opportunity):
    opportunity = make_opportunity()

    def work(_: int) -> None:
        unit_of_work(Opportunity.objects.get(pk=opportunity.pk), "meeting_updated")

    assert at_once(8, work, each_done=connections.close_all) == [None] * 8
    assert Opportunity.objects.get().version == 8
    stamps = ActionHistory.objects.order_by("opportunity_version").values_list("opportunity_version", flat=True)
    assert list(stamps) == list(range(1, 9))
