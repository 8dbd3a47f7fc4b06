"""The web's opt-outs as fetching reads them: ``X-Robots-Tag`` directives, TDM-Rep rules
(``/.well-known/tdmrep.json``) and robots.txt matched as RFC 9309 says. Pure parsing and matching, no I/O:
``tagsight.ingest.fetch`` asks the sites and applies the answers."""

from __future__ import annotations

import functools
import json
import re
import urllib.parse
import urllib.robotparser
from typing import Protocol
from urllib.parse import urlsplit

DISALLOWED_DIRECTIVES = ("noai", "noimageai", "noindex", "noimageindex")
"""img2dataset's default ``--disallowed_header_directives``."""

_VALUED_DIRECTIVES = frozenset({"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"})
_SCOPED = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*:(.*)$")


def x_robots_optout(values: list[str], agent_token: str, disallowed: tuple[str, ...]) -> str | None:
    """The first disallowed directive in ``X-Robots-Tag`` values that applies to ``agent_token``, else None.

    A value ``agent: directives`` applies only to that agent; a bare list applies to all.
    """
    for value in values:
        scoped = _SCOPED.match(value)
        if scoped and scoped.group(1).lower() not in _VALUED_DIRECTIVES:
            if scoped.group(1).lower() != agent_token.lower():
                continue
            value = scoped.group(2)
        for directive in value.split(","):
            if directive.strip().lower() in disallowed:
                return directive.strip().lower()
    return None


def _location_regex(location: str) -> re.Pattern[str]:
    """A TDM-Rep/robots.txt path pattern (``*`` any characters, a final ``$`` the end) as a regex."""
    anchored = location.endswith("$")
    body = location[:-1] if anchored else location
    return re.compile("".join(".*" if c == "*" else re.escape(c) for c in body) + ("$" if anchored else ""))


def parse_tdmrep(text: str) -> list[tuple[re.Pattern[str], bool]]:
    """``/.well-known/tdmrep.json`` as ordered (location pattern, reserved) rules; ValueError when malformed."""
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError("tdmrep.json must be a JSON array of rules")
    rules = []
    for rule in data:
        if not isinstance(rule, dict) or not isinstance(rule.get("location"), str):
            raise ValueError(f"tdmrep.json rule {rule!r} has no location")
        reserved = rule.get("tdm-reservation")
        rules.append((_location_regex(rule["location"]), str(reserved).strip() == "1"))
    return rules


def tdm_reserved(rules: list[tuple[re.Pattern[str], bool]], url: str) -> bool:
    """Whether the first rule matching the URL's path (and query) reserves TDM rights."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    for pattern, reserved in rules:
        if pattern.match(path):
            return reserved
    return False


class _RobotRule(Protocol):
    path: str
    allowance: bool


class _RobotGroup(Protocol):
    useragents: list[str]
    rulelines: list[_RobotRule]


@functools.lru_cache(maxsize=256)
def _robot_rules(parser: urllib.robotparser.RobotFileParser, token: str) -> list[tuple[int, bool, re.Pattern[str]]]:
    """The rules of the groups for ``token`` (else ``*``) as (pattern length, allowance, compiled pattern), once per
    parsed robots.txt (a site's robots.txt is matched against every URL of that site)."""
    entries: list[_RobotGroup] = parser.entries  # type: ignore[attr-defined]  # typeshed omits RobotFileParser.entries
    default: _RobotGroup | None = parser.default_entry  # type: ignore[attr-defined]  # nor .default_entry
    rules = [line for entry in entries if any(ua.lower() == token for ua in entry.useragents)
             for line in entry.rulelines]
    if not rules and default is not None:
        rules = list(default.rulelines)
    out = []
    for line in rules:
        pattern = line.path.replace("%2A", "*")  # robotparser stores rule paths percent-quoted
        pattern = pattern[:-3] + "$" if pattern.endswith("%24") else pattern
        if pattern:  # an empty Disallow allows everything: it matches nothing
            out.append((len(pattern), line.allowance, _location_regex(pattern)))
    return out


def robots_allowed(parser: urllib.robotparser.RobotFileParser, agent_token: str, url: str) -> bool:
    """RFC 9309 matching over the groups ``urllib.robotparser`` parsed: the groups naming ``agent_token``
    (merged; else the ``*`` group), ``*`` and a final ``$`` in rule paths, the longest matching rule
    wins and ``Allow`` wins a tie. (``RobotFileParser.can_fetch`` takes the first match and treats
    ``*`` literally, which would let ``Disallow: /*.jpg$`` through.) The rules are compiled once per parser:
    parse a robots.txt into a new parser rather than re-parsing one already matched against."""
    parts = urlsplit(url)
    path = urllib.parse.quote(urllib.parse.unquote(parts.path or "/")) + (f"?{parts.query}" if parts.query else "")
    best: tuple[int, bool] | None = None
    for length, allowance, regex in _robot_rules(parser, agent_token.lower()):
        key = (length, allowance)
        if (best is None or key > best) and regex.match(path):
            best = key
    return True if best is None else best[1]
