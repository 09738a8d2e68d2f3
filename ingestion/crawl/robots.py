"""robots.txt (RFC 9309) and robots meta directives, for Lore's user agent.

Pure functions. Unlike ``urllib.robotparser`` this follows the RFC's precedence (the longest
matching rule wins, Allow on a tie), reads ``*`` and ``$`` in paths, and takes a fractional
Crawl-delay.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata

PRODUCT = "LoreBot"
# RFC 9309: crawlers must parse at least 500 KiB of a robots.txt.
MAX_ROBOTS_BYTES = 512 * 1024
# Directives written "name: value", not to be read as "crawler: directives".
_VALUED_DIRECTIVES = ("unavailable_after", "max-snippet", "max-image-preview", "max-video-preview")


@cache
def user_agent() -> str:
    """Lore's crawler user agent, ``LoreBot/<version> (+https://lore.invalid/bot)``."""
    try:
        version = metadata.version("lore")
    except metadata.PackageNotFoundError:
        version = "0"
    return f"{PRODUCT}/{version} (+https://lore.invalid/bot)"


@dataclass(frozen=True, slots=True)
class Rule:
    pattern: str
    allow: bool
    regex: re.Pattern[str] = field(compare=False)


@dataclass(frozen=True, slots=True)
class RobotsRules:
    """The rules of the group that applies to Lore in one robots.txt."""

    rules: tuple[Rule, ...] = ()
    crawl_delay: float | None = None

    def allows(self, path: str) -> bool:
        """Whether the path (with its query) may be fetched."""
        if path == "/robots.txt":
            return True
        best: Rule | None = None
        for rule in self.rules:
            if rule.regex.match(path) and (
                best is None
                or len(rule.pattern) > len(best.pattern)
                or (len(rule.pattern) == len(best.pattern) and rule.allow)
            ):
                best = rule
        return best is None or best.allow


ALLOW_ALL = RobotsRules()


def parse_robots(text: str, product: str = PRODUCT) -> RobotsRules:
    """The rules for ``product`` in a robots.txt: its own groups, else the ``*`` groups."""
    groups: dict[str, list[tuple[str, str]]] = {}
    agents: list[str] = []
    in_rules = False
    for raw in text.lstrip("\ufeff").splitlines():
        line = raw.split("#", 1)[0].strip()
        if ":" not in line:
            continue
        key, value = (part.strip() for part in line.split(":", 1))
        key = key.lower()
        if key == "user-agent":
            if in_rules:
                agents, in_rules = [], False
            agents.append(re.split(r"[/\s]", value, maxsplit=1)[0].lower())
        elif key in ("allow", "disallow", "crawl-delay") and agents:
            in_rules = True
            # Several groups naming one agent are merged (RFC 9309 2.2.1).
            for agent in agents:
                groups.setdefault(agent, []).append((key, value))
    lines = groups.get(product.lower(), groups.get("*", []))
    rules: list[Rule] = []
    delay: float | None = None
    for key, value in lines:
        if key == "crawl-delay":
            try:
                delay = max(0.0, float(value))
            except ValueError:
                continue
        elif value:
            rules.append(_rule(value, allow=key == "allow"))
    return RobotsRules(tuple(rules), delay)


def _rule(pattern: str, *, allow: bool) -> Rule:
    pattern = _upper_escapes(pattern if pattern.startswith(("/", "*")) else "/" + pattern)
    anchored = pattern.endswith("$")
    body = pattern[:-1] if anchored else pattern
    regex = ".*".join(re.escape(piece) for piece in body.split("*")) + (r"\Z" if anchored else "")
    return Rule(pattern, allow, re.compile(regex))


def _upper_escapes(path: str) -> str:
    return re.sub(r"%[0-9a-f]{2}", lambda m: m.group(0).upper(), path)


def robots_directives(values: Iterable[str], product: str = PRODUCT) -> frozenset[str]:
    """Directives (noindex, nofollow) for Lore in robots meta contents or X-Robots-Tag values.

    ``none`` means both; a value may be scoped to one crawler ("otherbot: noindex").
    """
    found: set[str] = set()
    for value in values:
        head, colon, rest = value.partition(":")
        head = head.strip().lower()
        if colon and head not in _VALUED_DIRECTIVES and re.fullmatch(r"[\w-]+", head):
            if head != product.lower():
                continue
            value = rest
        for directive in value.lower().split(","):
            directive = directive.strip()
            found |= {"noindex", "nofollow"} if directive == "none" else {directive}
    return frozenset(found & {"noindex", "nofollow"})
