# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tool_version: the version a tool printed in a registered command result, or None when it did not run."""

from __future__ import annotations

import re
from typing import Any

_VERSION = re.compile(r"(\d+\.\d+(?:\.\d+)?)")


def tool_version(result: Any) -> str | None:
    """``X.Y[.Z]`` from the first line of stdout (or stderr) of a successful command result."""
    if not isinstance(result, dict) or result.get("skipped") or result.get("rc", 1) != 0:
        return None
    for stream in ("stdout", "stderr"):
        text = result.get(stream) or ""
        match = _VERSION.search(text)
        if match:
            return match.group(1)
    return None


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"tool_version": tool_version}
