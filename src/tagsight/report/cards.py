"""Data and model cards as sections of an HTML report (``tagsight.report.html``)."""

from __future__ import annotations

from pathlib import Path

from tagsight.privacy.cards import Card, data_card, model_card
from tagsight.report.html import Report
from tagsight.storage import local_folder


def card_for(path: str | Path, vocab: str | Path | None = None) -> Card:
    """The data card of a dataset folder (``manifest.json``) or the model card of a run folder (``run.json``), local
    or at an fsspec URL."""
    path = local_folder(path, metadata_only=True)   # a URL: its records only, never its shards or weights
    if (path / "run.json").is_file():
        return model_card(path)
    return data_card(path, vocab)


def add_card_section(report: Report, path: str | Path, vocab: str | Path | None = None) -> Report:
    """Append the card of ``path`` to ``report``: one HTML section per card section."""
    card = card_for(path, vocab)
    for s in card.sections:
        section = report.section(f"{card.title}: {s.title}")
        for block in s.blocks:
            if block[0] == "p":
                section.paragraph(block[1])
            elif block[0] == "kv":
                section.key_values(block[1])
            else:
                section.table(block[1], block[2])
    return report
