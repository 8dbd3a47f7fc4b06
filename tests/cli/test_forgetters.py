"""The command line assembles every forgettable artifact kind; privacy names none of them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tagsight.cli.forgetters  # noqa: F401  (registers every artifact kind)
from tagsight.fsio import ReasonError
from tagsight.privacy import forget as forget_module
from tagsight.privacy.forget import FORGETTERS, forget, requests_from
from tagsight.registry import Registry

SRC = Path(__file__).resolve().parents[2] / "src" / "tagsight"


def test_every_owner_registers_its_kind():
    kinds = set(FORGETTERS.names())
    assert {"dataset", "features", "curation", "reviews", "similar_index", "generator", "run", "vocab",
            "derived", "tables"} <= kinds
    assert FORGETTERS.create("dataset").stage == 0    # datasets first: the others resolve against them


def test_privacy_names_no_module_above_it():
    for path in (SRC / "privacy").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        named = [s for s in strings if s.startswith("tagsight.") and not s.startswith(("tagsight.privacy",
                                                                                       "tagsight.schema"))]
        assert not named, f"{path.name} names {named}"


def test_forget_refuses_when_no_kind_is_registered(monkeypatch, tmp_path):
    monkeypatch.setattr(forget_module, "FORGETTERS", Registry("artifact kind"))
    with pytest.raises(ReasonError) as err:
        forget(requests_from(authors=["someone"]), tmp_path)
    assert err.value.reason == "no_forgetters"
