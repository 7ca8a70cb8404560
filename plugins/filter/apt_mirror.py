# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""apt_mirror: the mirror a host's apt sources use for a release, read from the sources files themselves.

``apt-get indextargets`` would say it too, but only once the package lists were downloaded; a fresh host (or a
minimal image whose lists were cleaned) has none, and the role must not refresh them in check mode.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from ansible.errors import AnsibleFilterError

_ONE_LINE = re.compile(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(?P<uri>\S+)\s+(?P<suite>\S+)")


def _one_line(text: str) -> Iterable[tuple[str, str]]:
    for line in text.splitlines():
        match = _ONE_LINE.match(line.split("#", 1)[0])
        if match:
            yield match.group("uri"), match.group("suite")


def _deb822(text: str) -> Iterable[tuple[str, str]]:
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0] in " \t" and key:
                fields[key] += " " + line.strip()
                continue
            key, _sep, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if fields.get("enabled", "yes").lower() == "no" or "deb" not in fields.get("types", "").split():
            continue
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                yield uri, suite


def apt_mirror(sources: Any, release: str) -> str:
    """The first URI that serves ``release`` (binary packages) among the texts of sources files, or ''.

    ``sources`` is a list of the files' texts (one-line ``.list`` format or deb822 ``.sources``; each text is read
    in the format it is written in).
    """
    if isinstance(sources, str):
        sources = [sources]
    if not isinstance(sources, (list, tuple)):
        raise AnsibleFilterError("apt_mirror expects a list of the texts of apt sources files")
    for text in sources:
        text = str(text or "")
        entries = _deb822(text) if re.search(r"(?mi)^Types:", text) else _one_line(text)
        for uri, suite in entries:
            if suite == release:
                return uri
    return ""


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"apt_mirror": apt_mirror}
