from __future__ import annotations

import pytest

from ansible_collections.restoreops.dr.plugins.filter.tool_version import tool_version


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({"rc": 0, "stdout": "borg 1.2.4\n"}, "1.2.4"),
        ({"rc": 0, "stdout": "restic 0.14.0 compiled with go1.19.8 on linux/amd64\n"}, "0.14.0"),
        ({"rc": 0, "stdout": "psql (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n"}, "15.18"),
        ({"rc": 0, "stdout": "", "stderr": "rsnapshot 1.4.5\n"}, "1.4.5"),
        ({"rc": 2, "stdout": "", "stderr": "[Errno 2] No such file or directory: b'borg'"}, None),
        ({"skipped": True}, None),
        ({"rc": 0, "stdout": "no digits here"}, None),
        ("not a result", None),
    ],
)
def test_tool_version(result, expected):
    assert tool_version(result) == expected


@pytest.mark.parametrize(
    ("text", "epoch"),
    [("2026-03-14T02:00:00Z", 1773453600.0), ("2026-03-14T03:00:00.123456789+01:00", 1773453600.123456),
     ("2026-03-14 02:00:00+00", 1773453600.0), ("2026-03-14T02:00:00.000000", 1773453600.0)],
)
def test_timestamp(text, epoch):
    from ansible_collections.restoreops.dr.plugins.filter.timestamp import timestamp

    assert timestamp(text) == pytest.approx(epoch)


def test_timestamp_rejects_garbage():
    from ansible.errors import AnsibleFilterError

    from ansible_collections.restoreops.dr.plugins.filter.timestamp import timestamp

    with pytest.raises(AnsibleFilterError):
        timestamp("yesterday")
