# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the point-in-time recovery's base backup choice."""

from __future__ import annotations

import pytest

from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError
from ansible_collections.restoreops.dr.plugins.module_utils._pitr import choose_base_backup

LABELS = [  # given out of order: the choice sorts by name
    {"name": "20260314T080000Z", "end_time": "2026-03-14 08:00:05+00", "start_wal": "000000010000000000000005"},
    {"name": "20260313T080000Z", "end_time": "2026-03-13 08:00:04+00", "start_wal": "000000010000000000000002"},
    {"name": "20260315T080000Z", "end_time": "2026-03-15 08:00:06+00", "start_wal": "000000010000000000000009"},
]


def names(label):
    return label.get("name")


@pytest.mark.parametrize("target,expected", [
    ("latest", "20260315T080000Z"),
    ("2026-03-14 09:00:00", "20260314T080000Z"),
    ("2026-03-14 08:00:05", "20260314T080000Z"),  # ended exactly then: usable
    ("2026-03-14 08:00:05.900000", "20260314T080000Z"),  # compared to the second, as recorded
    ("2026-03-14 08:00:04", "20260313T080000Z"),  # ended a second later: not usable
    ("2026-03-16 00:00:00", "20260315T080000Z"),
    ("2026-03-14T10:00:00+02:00", "20260313T080000Z"),  # an offset is honoured: 08:00:00 UTC
])
def test_newest_backup_that_ended_before_the_target(target, expected):
    assert names(choose_base_backup(LABELS, target)) == expected


def test_nothing_fits_before_the_first_backup_ended():
    assert choose_base_backup(LABELS, "2026-03-13 08:00:03") == {}
    assert choose_base_backup([], "latest") == {}


def test_a_named_backup_is_taken_as_it_is():
    assert names(choose_base_backup(LABELS, "2026-03-13 00:00:00", "20260315T080000Z")) == "20260315T080000Z"
    assert choose_base_backup(LABELS, "latest", "no-such-backup") == {}


def test_bad_times_are_refused():
    with pytest.raises(InputError, match="not a time"):
        choose_base_backup(LABELS, "yesterday")
    with pytest.raises(InputError, match="unreadable end_time"):
        choose_base_backup([{"name": "x", "end_time": "soon"}], "2026-03-14 09:00:00")


def test_the_filter_wraps_the_choice():
    from ansible.errors import AnsibleFilterError

    from ansible_collections.restoreops.dr.plugins.filter.pitr_base_backup import pitr_base_backup

    assert names(pitr_base_backup(LABELS, "2026-03-14 09:00:00")) == "20260314T080000Z"
    with pytest.raises(AnsibleFilterError, match="not a time"):
        pitr_base_backup(LABELS, "yesterday")
    with pytest.raises(AnsibleFilterError, match="expects the list"):
        pitr_base_backup("nope")
