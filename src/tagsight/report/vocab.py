"""The vocabulary section of a report: coverage, labels, merges, drops, long tail, sampling, ambiguity."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tagsight.report.html import Report
from tagsight.report.plots import bar_chart, loglog_histogram, rank_curves
from tagsight.tags.sampling import SAMPLING_MODES
from tagsight.tags.vocab import Vocabulary

TOP_ROWS = 30
EXAMPLES = 8


def vocab_report(vocab: Vocabulary, title: str = "Hashtag vocabulary") -> Report:
    """A Report with every vocabulary section."""
    report = Report(title, f"version {vocab.version} · {len(vocab)} labels · {vocab.coverage['posts']:,} posts")
    add_vocab_sections(report, vocab)
    return report


def write_vocab_report(vocab: Vocabulary, path: str | Path) -> str | Path:
    """Write the vocabulary report as one self-contained HTML file."""
    return vocab_report(vocab).write(path)


def add_vocab_sections(report: Report, vocab: Vocabulary) -> None:
    """Append the vocabulary sections to ``report`` (so that other reports can include them)."""
    _summary(report, vocab)
    _labels(report, vocab)
    _merges(report, vocab)
    _drops(report, vocab)
    _long_tail(report, vocab)
    _sampling(report, vocab)
    _ambiguous(report, vocab)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _summary(report: Report, vocab: Vocabulary) -> None:
    c, cfg = vocab.coverage, vocab.config
    sec = report.section("Coverage", "Coverage is the share of posts with at least one label.")
    sec.key_values({
        "version": vocab.version,
        "input": ", ".join(f"{k}={v}" for k, v in vocab.input.items()),
        "posts": c["posts"],
        "posts with >= 1 label": c["posts_with_label"],
        "coverage": _pct(c["coverage"]),
        "distinct hashtags (normalised)": c["distinct_tags"],
        "hashtags mapped to a visual synset": c["distinct_tags_visual"],
        "hashtags kept (members of a label)": c["distinct_tags_kept"],
        "hashtag occurrences kept": f"{c['tag_occurrences_kept']:,} of {c['tag_occurrences']:,} "
                                    f"({_pct(c['tag_occurrences_kept'] / max(c['tag_occurrences'], 1))})",
        "labels": len(vocab),
        "top_k / min_count / rollup_depth": f"{cfg['top_k']} / {cfg['min_count']} / {cfg['rollup_depth']}",
        "sampling": cfg["sampling"],
    })


def _members_text(members: dict[str, int], limit: int = EXAMPLES) -> str:
    shown = ", ".join(f"#{tag} ({n:,})" for tag, n in list(members.items())[:limit])
    return shown + (f", … {len(members) - limit} more" if len(members) > limit else "")


def _labels(report: Report, vocab: Vocabulary) -> None:
    sec = report.section("Labels", f"The {min(TOP_ROWS, len(vocab))} most frequent labels of {len(vocab)}.")
    rows = [[l.index, l.label, l.wnid, l.lexname, l.posts, _members_text(l.members)] for l in vocab.labels[:TOP_ROWS]]
    sec.table(["#", "label", "wnid", "lexname", "posts", "member hashtags (posts)"], rows)


def _merges(report: Report, vocab: Vocabulary) -> None:
    merged = sorted((l for l in vocab.labels if len(l.members) > 1), key=lambda l: (-len(l.members), -l.posts, l.label))
    sec = report.section("Top merges", f"{len(merged)} labels merge several hashtags (synonyms, spellings, "
                                       "compounds); those with the most distinct members first.")
    rows = [[l.label, len(l.members), l.posts, _members_text(l.members, 12)] for l in merged[:TOP_ROWS]]
    sec.table(["label", "hashtags", "posts", "member hashtags (posts)"], rows)


def _drops(report: Report, vocab: Vocabulary) -> None:
    summary = vocab.drop_summary()
    sec = report.section("Drops by reason", "Every hashtag that is not a label, grouped by the reason it was "
                                            "dropped; posts count tag occurrences (one per post).")
    if summary:
        sec.figure(bar_chart(list(summary), [v["posts"] for v in summary.values()],
                             "Dropped hashtag occurrences by reason", "posts", log=True), "Drops by reason")
    examples: dict[str, list[str]] = {}
    for drop in vocab.drops:
        if len(examples.setdefault(drop.reason, [])) < EXAMPLES:
            examples[drop.reason].append(f"#{drop.tag} ({drop.posts:,})")
    rows = [[reason, v["tags"], v["posts"], ", ".join(examples[reason])] for reason, v in summary.items()]
    sec.table(["reason", "hashtags", "posts", "most frequent examples"], rows)


def _long_tail(report: Report, vocab: Vocabulary) -> None:
    sec = report.section("Long tail", "How many labels have how many posts, on log-log axes: hashtag "
                                      "frequencies are Zipf-like, a few labels cover most posts.")
    freqs = vocab.frequencies
    if freqs.size:
        sec.figure(loglog_histogram(freqs, "Label frequency histogram", "posts per label", "labels"),
                   "Long-tail histogram of label frequencies")
        q = np.percentile(freqs, [50, 90, 99])
        sec.paragraph(f"Median label: {q[0]:,.0f} posts; 90th percentile {q[1]:,.0f}; 99th {q[2]:,.0f}; "
                      f"largest {freqs.max():,.0f}; smallest {freqs.min():,.0f}.")


def _sampling(report: Report, vocab: Vocabulary) -> None:
    sec = report.section("Effective label distribution under sampling",
                         "Expected share of each label among the labels of resampled posts: none = the "
                         "corpus; sqrt = posts weighted by the mean of freq^-1/2 over their labels (WSL), so a "
                         "label's share follows the square root of its frequency; inverse = freq^-1, flat.")
    if not len(vocab) or vocab.label_sets is None:
        sec.paragraph("Not available: the vocabulary is empty or was loaded without its build input.")
        return
    curves = {mode: vocab.effective_distribution(mode) for mode in SAMPLING_MODES}
    sec.figure(rank_curves(curves, "Label share by rank under each sampling mode"), "Effective label distribution")
    head = max(1, len(vocab) // 10)
    rows = [[mode, _pct(np.sort(d)[::-1][:head].sum()), f"{d.max():.4f}", f"{d[d > 0].min():.6f}"]
            for mode, d in curves.items()]
    sec.table(["mode", f"share of the top {head} labels", "largest share", "smallest share"], rows)


def _ambiguous(report: Report, vocab: Vocabulary) -> None:
    sec = report.section("Ambiguous hashtags", f"{len(vocab.ambiguous)} mapped hashtags have more than one "
                         "WordNet noun sense. Rule: the first sense (the most frequent in SemCor) unless the "
                         "override table names another.")
    rows = [[r["tag"], r["posts"], r["chosen"], r["rule"], "yes" if r["kept"] else "no",
             ", ".join(r["senses"][:5]) + (" …" if len(r["senses"]) > 5 else "")] for r in vocab.ambiguous[:TOP_ROWS]]
    sec.table(["hashtag", "posts", "chosen", "rule", "kept", "senses considered"], rows)
