from __future__ import annotations

import pytest

from ansible_collections.restoreops.dr.plugins.filter.apt_mirror import apt_mirror

DEB822 = """Types: deb
# a snapshot of the archive
URIs: http://mirror.invalid/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.invalid/debian-security
Suites: bookworm-security
Components: main
"""


@pytest.mark.parametrize(
    ("sources", "release", "expected"),
    [
        (["deb http://mirror.invalid/debian bookworm main"], "bookworm", "http://mirror.invalid/debian"),
        (["deb [arch=amd64 signed-by=/k.gpg] http://m.invalid/d/ bookworm main contrib"], "bookworm",
         "http://m.invalid/d/"),
        (["# deb http://old.invalid/debian bookworm main\ndeb-src http://src.invalid/d bookworm main\n"
          "deb http://new.invalid/debian bookworm main"], "bookworm", "http://new.invalid/debian"),
        ([DEB822], "bookworm", "http://mirror.invalid/debian"),
        ([DEB822], "bookworm-security", "http://mirror.invalid/debian-security"),
        ([DEB822.replace("Types: deb\n# a", "Types: deb\nEnabled: no\n# a")], "bookworm", ""),
        (["deb http://mirror.invalid/debian trixie main", DEB822], "bookworm", "http://mirror.invalid/debian"),
        (["deb http://mirror.invalid/debian bookworm-updates main"], "bookworm", ""),
        ([], "bookworm", ""),
    ],
)
def test_apt_mirror(sources, release, expected):
    assert apt_mirror(sources, release) == expected
