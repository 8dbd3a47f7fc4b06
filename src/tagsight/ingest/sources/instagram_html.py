"""The HTML package of an Instagram export: posts pages (``posts_N.html``) and the personal information page.

Parsed with Beautiful Soup (``pip install 'tagsight[exports]'``). A posts page is one block per post
(``div.uiBoxWhite``, else the children of the ``role=main`` element): the caption is the first
child without media or tables (a ``div`` or an ``h2``), the time is the last child (``Aug 17, 2025
11:23 am``, read as UTC: the page gives no zone), the media are the relative ``<img src>``,
``<video src>`` and ``<a href>`` of the block, in order. Location and tagged-user tables are never read.
"""

from __future__ import annotations

import datetime as dt
import logging
import posixpath
import re
from dataclasses import dataclass
from typing import Any

from tagsight.ingest.sources.base import Rejected, SourceError
from tagsight.ingest.tree import Tree
from tagsight.ingest.tree_safety import TreeError

log = logging.getLogger(__name__)

TIME_FORMATS = ("%b %d %Y %I:%M %p", "%b %d %Y %I:%M:%S %p", "%B %d %Y %I:%M %p", "%b %d %Y %H:%M",
                "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_MEDIA_TAGS = ("img", "video", "source", "a")


@dataclass(frozen=True)
class HtmlPost:
    """One post block: caption text, ISO time, media paths relative to the export root."""

    caption: str
    created_at: str
    media: tuple[str, ...]


def _soup(data: bytes) -> Any:
    try:
        from bs4 import BeautifulSoup
    except ImportError:
        raise SourceError("reading the HTML package needs Beautiful Soup: pip install 'tagsight[exports]' "
                          "(or request the export in JSON format)") from None
    return BeautifulSoup(data, "html.parser")


def parse_time(text: str) -> str | None:
    """``Aug 17, 2025 11:23 am`` / ``Sep 8, 2016, 4:36 PM`` -> ISO 8601 UTC, or None when unreadable."""
    clean = " ".join(text.replace(",", " ").split())
    for fmt in TIME_FORMATS:
        try:
            t = dt.datetime.strptime(clean, fmt)
        except ValueError:
            continue
        return t.replace(tzinfo=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return None


def parse_posts_page(tree: Tree, rel: str, max_bytes: int) -> list[HtmlPost | Rejected]:
    """Every post block of ``rel`` as an HtmlPost, or a Rejected (ref filled by the caller) when unreadable."""
    try:
        data = tree.read_bytes(rel, max_bytes)
    except (TreeError, OSError) as exc:
        raise SourceError(f"cannot read {rel}: {exc}") from None
    soup = _soup(data)
    blocks = soup.select("div.uiBoxWhite")
    if not blocks:
        main = soup.select_one("[role=main]")
        if main is None:
            raise SourceError(f"{rel} has no post blocks (no div.uiBoxWhite, no [role=main]): this page "
                              "layout is not known; request the export in JSON format")
        blocks = main.find_all("div", recursive=False)
    base = posixpath.dirname(rel)
    return [_post(block, tree, base) for block in blocks]


def _post(block: Any, tree: Tree, base: str) -> HtmlPost | Rejected:
    for br in block.find_all("br"):
        br.replace_with("\n")
    children = block.find_all(recursive=False)
    if not children:
        return Rejected("", "invalid_record", "an empty post block")
    stamp = children[-1].get_text(" ", strip=True)
    created = parse_time(stamp)
    if created is None:
        return Rejected("", "invalid_field:created_at", f"cannot read the post's time {stamp[:80]!r}")
    texts = [c for c in children[:-1] if _plain(c)]
    if not texts:  # a wrapper around caption and media: the first plain div inside it, outside any table
        texts = [d for c in children[:-1] for d in c.find_all("div") if _plain(d) and d.find_parent("table") is None
                 and d.get_text().strip()]
    caption = texts[0].get_text().strip() if texts else ""
    return HtmlPost(caption, created, tuple(_media(block, tree, base)))


def _plain(tag: Any) -> bool:
    """A tag with text only: no media, table or link to a file in it (web links, e.g. on hashtags, are text)."""
    if tag.name in _MEDIA_TAGS + ("table",) or tag.find(("img", "video", "source", "table")) is not None:
        return False
    return all(_SCHEME.match(a.get("href") or "") for a in tag.find_all("a"))


def _media(block: Any, tree: Tree, base: str) -> list[str]:
    """Relative media links of a block, in order, without repeats; resolved against the page's folder only
    when not found from the export root (``../``-style links)."""
    out: list[str] = []
    for tag in block.find_all(_MEDIA_TAGS):
        link = tag.get("href") if tag.name == "a" else tag.get("src")
        if not isinstance(link, str) or not link.strip() or link.startswith("#") or link.endswith(".html"):
            continue
        link = link.strip()
        if tag.name == "a" and _SCHEME.match(link):
            continue  # a link to a profile or a web page, not media
        if not _SCHEME.match(link) and not tree.is_file(link):
            joined = posixpath.normpath(posixpath.join(base, link))
            link = joined if tree.is_file(joined) else link
        if link not in out:
            out.append(link)
    return out


def profile_fields(data: bytes) -> dict[str, str]:
    """``{label: value}`` of the personal information page: a cell holding the label then the value,
    or a row of a label cell and a value cell."""
    soup = _soup(data)
    fields: dict[str, str] = {}
    for row in soup.find_all("tr"):
        cells = row.find_all("td", recursive=False)
        if len(cells) == 2 and not cells[0].find("td"):
            fields.setdefault(cells[0].get_text(" ", strip=True), cells[1].get_text(" ", strip=True))
    for cell in soup.find_all("td"):
        strings = list(cell.stripped_strings)
        if len(strings) == 2:
            fields.setdefault(strings[0], strings[1])
    return fields
