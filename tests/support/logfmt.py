"""A strict logfmt reader for the service's lines: ``k=v`` pairs, one space apart, values bare or
double-quoted with backslash escapes (what ``pricing_service.logs`` writes). A line that is not
entirely such pairs is refused, so a test that parses every line also proves every line is one."""

from __future__ import annotations

import re

_PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_.]*)=("(?:[^"\\]|\\.)*"|[^\s"=]+)(?: |$)')
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


def _unquote(value: str) -> str:
    if not value.startswith('"'):
        return value
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), value[1:-1])


def parse_logfmt(line: str) -> dict[str, str]:
    """``{"ts": ..., "level": "info", "event": "app.started", ...}``; ValueError if not logfmt."""
    pairs: dict[str, str] = {}
    position = 0
    while position < len(line):
        match = _PAIR.match(line, position)
        if match is None:
            raise ValueError(f"not logfmt at column {position}: {line!r}")
        key, value = match.group(1), match.group(2)
        if key in pairs:
            raise ValueError(f"key {key!r} twice: {line!r}")
        pairs[key] = _unquote(value)
        position = match.end()
    if not pairs:
        raise ValueError(f"empty line: {line!r}")
    return pairs
