"""``tagsight setup wordnet``: put Debian's WordNet where nltk reads it (offline)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("setup", help="one-time offline setup of data files tagsight reads")
    p.add_argument("what", choices=["wordnet"], help="wordnet: copy /usr/share/wordnet into NLTK_DATA")
    p.add_argument("--data-dir", type=Path, default=None, help="nltk data folder (default $NLTK_DATA or ~/nltk_data)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tagsight.tags.wordnet import install_wordnet, load_wordnet

    install_wordnet(data_dir=args.data_dir)
    load_wordnet()
    return 0
