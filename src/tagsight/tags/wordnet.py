"""WordNet 3.0 offline: install Debian's ``wordnet-base`` files where nltk reads them, then load.

Debian puts the database in ``/usr/share/wordnet``. nltk refuses a symlinked corpus folder and
needs a ``lexnames`` file the package lacks, so ``install_wordnet`` copies the files into
``$NLTK_DATA/corpora/wordnet`` (default ``~/nltk_data``) and writes ``lexnames`` from the
lexicographer-file table of the WordNet ``lexnames(5WN)`` manual page.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEBIAN_WORDNET = Path("/usr/share/wordnet")
_FILES = (
    "adj.exc", "adv.exc", "cntlist", "cntlist.rev", "data.adj", "data.adv", "data.noun", "data.verb",
    "index.adj", "index.adv", "index.noun", "index.sense", "index.verb", "noun.exc", "verb.exc",
)
LEXNAMES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
    "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
    "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
    "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition",
    "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl",
)
_SYNTACTIC_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


class WordNetMissing(RuntimeError):
    """WordNet is not installed where nltk can read it."""


def nltk_data_dir() -> Path:
    first = os.environ.get("NLTK_DATA", "").split(os.pathsep)[0]
    return Path(first) if first else Path.home() / "nltk_data"


def lexnames_text() -> str:
    """The 45-line ``lexnames`` file: number, name, syntactic category, tab separated."""
    rows = (f"{i:02d}\t{name}\t{_SYNTACTIC_CATEGORY[name.split('.')[0]]}" for i, name in enumerate(LEXNAMES))
    return "\n".join(rows) + "\n"


def install_wordnet(src: Path = DEBIAN_WORDNET, data_dir: Path | None = None) -> Path:
    """Copy the WordNet database into ``<data_dir>/corpora/wordnet``; idempotent. Returns the folder."""
    dest = (data_dir or nltk_data_dir()) / "corpora" / "wordnet"
    missing = [f for f in ("data.noun", "index.noun") if not (src / f).is_file()]
    if missing:
        raise WordNetMissing(
            f"{src} lacks {', '.join(missing)}: install Debian's WordNet with "
            "'apt-get install -y wordnet-base wordnet-sense-index'"
        )
    dest.mkdir(parents=True, exist_ok=True)
    for name in _FILES:
        if (src / name).is_file() and not (dest / name).is_file():
            shutil.copyfile(src / name, dest / name)
    (dest / "lexnames").write_text(lexnames_text())
    log.info("WordNet 3.0 installed for nltk in %s", dest)
    return dest


@functools.lru_cache(maxsize=1)
def load_wordnet() -> Any:   # nltk's WordNetCorpusReader (nltk has no type information)
    """The nltk WordNet reader, loaded once; WordNetMissing with the fix when it is absent."""
    from nltk.corpus import wordnet as wn

    try:
        wn.ensure_loaded()
    except LookupError:
        raise WordNetMissing(
            "nltk cannot find WordNet; run 'tagsight setup wordnet' (after "
            "'apt-get install -y wordnet-base wordnet-sense-index')"
        ) from None
    return wn


WNID = re.compile(r"^n\d{8}$")   # a WordNet noun id, as ImageNet names its classes


def synset_of(name: str) -> Any:
    """The WordNet synset of a synset name (``tench.n.01``) or a WordNet noun id (``n01440764``); None if neither."""
    from nltk.corpus.reader.wordnet import WordNetError

    wn = load_wordnet()
    try:
        if WNID.match(name):
            return wn.synset_from_pos_and_offset("n", int(name[1:]))
        return wn.synset(name) if re.match(r"^.+\.n\.\d+$", name) else None
    except (WordNetError, ValueError):
        return None


@functools.lru_cache(maxsize=4096)
def wnid_hashtag(name: str) -> str | None:
    """The hashtag a WordNet noun id names (``n01440764`` -> ``tench``, ``n03394916`` -> ``frenchhorn``: the
    synset's first lemma, underscores dropped as a hashtag writes it); None for another name or an unknown id."""
    if not WNID.match(name):
        return None
    try:
        synset = synset_of(name)
    except WordNetMissing as exc:
        log.warning("class folder %s: %s; the folder name is kept as the hashtag", name, exc)
        return None
    if synset is None:
        log.warning("class folder %s names no WordNet noun; the folder name is kept as the hashtag", name)
        return None
    return str(synset.lemmas()[0].name()).replace("_", "").replace("-", "").lower()
