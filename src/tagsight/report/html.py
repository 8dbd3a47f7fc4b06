"""A small builder of ONE self-contained HTML file: sections of paragraphs, tables and figures.

Figures are matplotlib ``Figure`` objects embedded as base64 PNG ``data:`` URIs; the page has
inline CSS and no script, link or external ``src``/``href``, so it opens anywhere, offline, and
can be attached to an issue or archived with a run. Everything is HTML-escaped.

    report = Report("Vocabulary")
    sec = report.section("Coverage", "Share of posts with at least one label.")
    sec.key_values({"posts": 57383, "coverage": "71.3%"})
    sec.table(["label", "posts"], [["dog.n.01", 1616]])
    sec.figure(fig, "Label frequencies")
    report.write("report.html")
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from tagsight.storage import write_text

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#1d2327;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:2em}.subtitle{color:#666;margin-top:0}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}th,td{border:1px solid #ddd;padding:.25em .6em;
text-align:left;vertical-align:top}th{background:#f4f5f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1em 0}figure img{max-width:100%;height:auto}figcaption{color:#555;font-size:.9em}
.warning{background:#fff4e5;border:2px solid #d9480f;color:#7a2e0b;padding:.6em .9em;border-radius:4px;
font-weight:600}
caption{caption-side:bottom;color:#555;font-size:.85em;text-align:left;padding-top:.3em}
"""


def png_data_uri(fig: Any, dpi: int = 110) -> str:
    """A matplotlib Figure as a ``data:image/png;base64,...`` URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return f"<td>{html.escape(str(value))}</td>"
    if isinstance(value, int):
        return f'<td class="num">{value:,}</td>'
    if isinstance(value, float):
        return f'<td class="num">{value:,.4g}</td>'
    return f"<td>{html.escape(str(value))}</td>"


class Section:
    """One ``<section>``: a heading, then blocks in the order they are added. Methods chain."""

    def __init__(self, title: str, intro: str = "") -> None:
        self.title = title
        self.blocks: list[str] = []
        if intro:
            self.paragraph(intro)

    def paragraph(self, text: str) -> "Section":
        self.blocks.append(f"<p>{html.escape(text)}</p>")
        return self

    def warning(self, text: str) -> "Section":
        """A highlighted warning box."""
        self.blocks.append(f'<p class="warning">{html.escape(text)}</p>')
        return self

    def table(self, headers: Sequence[str], rows: Iterable[Sequence[Any]], caption: str = "") -> "Section":
        """A table; ints and floats are right-aligned and formatted, everything else escaped."""
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
        body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        self.blocks.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        return self

    def key_values(self, items: Mapping[str, Any]) -> "Section":
        """A two-column table of names and values."""
        return self.table(["", ""], list(items.items()))

    def figure(self, fig: Any, caption: str = "", alt: str = "") -> "Section":
        """Embed a matplotlib Figure as an inline PNG."""
        alt_text = html.escape(alt or caption or self.title)
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self.blocks.append(f'<figure><img alt="{alt_text}" src="{png_data_uri(fig)}">{cap}</figure>')
        return self

    def render(self) -> str:
        return f"<section><h2>{html.escape(self.title)}</h2>{''.join(self.blocks)}</section>"


class Report:
    """A titled page of sections, rendered to one HTML string or file."""

    def __init__(self, title: str, subtitle: str = "") -> None:
        self.title, self.subtitle = title, subtitle
        self.sections: list[Section] = []

    def section(self, title: str, intro: str = "") -> Section:
        """Append a new section and return it."""
        section = Section(title, intro)
        self.sections.append(section)
        return section

    def render(self) -> str:
        subtitle = f'<p class="subtitle">{html.escape(self.subtitle)}</p>' if self.subtitle else ""
        body = "".join(s.render() for s in self.sections)
        return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(self.title)}</title>'
                f"<style>{_CSS}</style></head><body><h1>{html.escape(self.title)}</h1>{subtitle}{body}</body></html>\n")

    def write(self, path: str | Path) -> str | Path:
        """Write the page (atomically: a temporary file renamed into place; at an fsspec URL one object put).
        Returns the path."""
        return write_text(path, self.render())
