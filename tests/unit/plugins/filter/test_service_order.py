from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.restoreops.dr.plugins.filter.service_order import service_order


def names(services):
    return [s["name"] for s in service_order(services)]


def test_dependencies_come_first_and_ties_keep_their_order():
    services = [{"name": "web", "after": ["app"]}, {"name": "app", "after": ["db", "cache"]},
                {"name": "cache"}, {"name": "db"}, {"name": "cron"}]
    assert names(services) == ["cache", "db", "cron", "app", "web"]


def test_after_may_be_a_string():
    assert names([{"name": "app", "after": "db"}, {"name": "db"}]) == ["db", "app"]


def test_cycle_is_named():
    with pytest.raises(AnsibleFilterError, match=r"cycle among a -> b -> a|cycle among b -> a -> b"):
        service_order([{"name": "a", "after": ["b"]}, {"name": "b", "after": ["a"]}, {"name": "c"}])


def test_self_dependency_is_a_cycle():
    with pytest.raises(AnsibleFilterError, match="cycle among a -> a"):
        service_order([{"name": "a", "after": ["a"]}])


@pytest.mark.parametrize(
    ("services", "message"),
    [([{"name": "a", "after": ["ghost"]}], "'ghost', which is not in the list"),
     ([{"name": "a"}, {"name": "a"}], "listed twice"),
     ([{"after": ["a"]}], "needs a name"),
     ("a,b", "expects a list")],
)
def test_bad_input(services, message):
    with pytest.raises(AnsibleFilterError, match=message):
        service_order(services)
