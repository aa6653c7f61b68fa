"""Dependency order from the FK graph, without a database: every target first, cycles broken or refused."""

import pytest
from django.apps import apps

from dbcopy.exceptions import PlanError
from dbcopy.graph import dependency_edges, order_models
from tests.copytest import models as m


def copytest_models():
    return [
        model for model in apps.get_app_config("copytest").get_models(include_auto_created=True)
        if not model._meta.proxy and model._meta.managed
    ]


def positions(ordering):
    return {model: i for i, model in enumerate(ordering.models)}


def test_every_fk_target_precedes_its_referrers_unless_written_later():
    ordering = order_models(copytest_models(), can_defer_constraints=lambda group: True)
    where = positions(ordering)
    deferred = {f for fields in ordering.deferred.values() for f in fields}
    grouped = {model for group in ordering.constraint_groups for model in group}
    checked = 0
    for edge in dependency_edges(list(where)):
        if edge.field in deferred or (edge.model in grouped and edge.target in grouped):
            continue
        assert where[edge.target] < where[edge.model], f"{edge.model} before its target {edge.target}"
        checked += 1
    assert checked >= 15
    # MTI: parent table, then child, then grandchild; through tables after both ends.
    assert where[m.Place] < where[m.Restaurant] < where[m.Pizzeria]
    assert where[m.Book] < where[m.Book.tags.through] and where[m.Tag] < where[m.Book.tags.through]


def test_nullable_cycles_are_broken_at_their_nullable_fks():
    ordering = order_models(copytest_models(), can_defer_constraints=lambda group: True)
    assert ordering.deferred[m.Category] == (m.Category._meta.get_field("parent"),)
    assert ordering.deferred[m.Country] == (m.Country._meta.get_field("capital"),)
    assert m.City not in ordering.deferred  # City.country is NOT NULL: Country goes first
    where = positions(ordering)
    assert where[m.Country] < where[m.City]


def test_a_not_null_cycle_is_copied_as_one_constraint_group():
    ordering = order_models(copytest_models(), can_defer_constraints=lambda group: True)
    assert ordering.constraint_groups == ((m.Chicken, m.Egg),)
    where = positions(ordering)
    assert abs(where[m.Chicken] - where[m.Egg]) == 1


def test_a_not_null_cycle_without_deferral_is_a_clear_error():
    asked = []
    with pytest.raises(PlanError) as error:
        order_models(copytest_models(), can_defer_constraints=lambda group: asked.append(group) or False)
    assert asked == [(m.Chicken, m.Egg)]
    message = str(error.value)
    assert "copytest.Chicken" in message and "copytest.Egg" in message and "null=True" in message


def test_order_is_stable():
    first = order_models(copytest_models(), can_defer_constraints=lambda group: True).models
    again = order_models(list(reversed(copytest_models())), can_defer_constraints=lambda group: True).models
    assert first == again
