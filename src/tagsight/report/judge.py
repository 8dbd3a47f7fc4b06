"""The judge sections of the HTML report: sample grids before/after, aesthetic distributions, preference.

``add_judge_sections(report, study_dir)`` adds what the study folder holds: ``aesthetic.json``
(``tagsight judge aesthetic``) and a pair study (``tagsight judge pairs``, votes from ``judge serve``).
The run report shows them for any run folder with a ``judge/`` study inside.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tagsight.curate.filters.aesthetic import PRIOR_MEASURES
from tagsight.curate.judge.aesthetic import read_aesthetic
from tagsight.curate.judge.pairs import IMAGES_DIR, PAIRS_FILE, PairStudy
from tagsight.curate.judge.preference import preference_stats
from tagsight.curate.judge.votes import read_votes
from tagsight.report.html import Report
from tagsight.report.plots import grouped_bars, interval_plot, overlaid_histograms

PROMPTS = 12      # prompts shown in the sample grids
PER_PROMPT = 6    # sample pairs shown per prompt


def has_study(study_dir: Path) -> bool:
    return read_aesthetic(study_dir) is not None or (study_dir / PAIRS_FILE).is_file()


def _from_pair_study(study_dir: Path) -> list[tuple[str, int, Path, Path]]:
    secret = PairStudy.load(study_dir).unblind()["pairs"]
    images = study_dir / IMAGES_DIR
    return [(s["prompt"], s["seed"], images / f"{s['before_image']}.png", images / f"{s['after_image']}.png")
            for s in secret.values()]


def _from_aesthetic(study: dict[str, Any]) -> list[tuple[str, int, Path, Path]]:
    b, a = Path(study["before"]["dir"]), Path(study["after"]["dir"])
    return [(r["prompt"], r["seed"], b / r["before"]["file"], a / r["after"]["file"]) for r in study["images"]]


def sample_pairs(study_dir: Path) -> list[tuple[str, int, Path, Path]]:
    """(prompt, seed, before image, after image): the study's own copies, else the aesthetic study's sources."""
    if (study_dir / PAIRS_FILE).is_file():
        rows = _from_pair_study(study_dir)
    else:
        rows = _from_aesthetic(read_aesthetic(study_dir) or {"images": [], "before": {"dir": ""}, "after": {"dir": ""}})
    return sorted((r for r in rows if r[2].is_file() and r[3].is_file()), key=lambda r: (r[0], r[1]))


def _grid(prompt: str, rows: list[tuple[str, int, Path, Path]]) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols = len(rows)
    fig = Figure(figsize=(1.5 * cols + 0.8, 3.4), layout="constrained")
    FigureCanvasAgg(fig)
    for j, (_, seed, before, after) in enumerate(rows):
        for i, (path, label) in enumerate(((before, "before"), (after, "after"))):
            ax = fig.add_subplot(2, cols, i * cols + j + 1)
            with Image.open(path) as img:
                ax.imshow(np.asarray(img.convert("RGB")), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(label, fontsize=9)
            if i == 1:
                ax.set_xlabel(f"seed {seed}", fontsize=7)
    fig.suptitle(prompt, fontsize=10)
    return fig


def _grids(report: Report, study_dir: Path) -> None:
    rows = sample_pairs(study_dir)
    if not rows:
        return
    prompts = list(dict.fromkeys(r[0] for r in rows))
    sec = report.section("Judge: samples before and after quality-tuning",
                         f"Same prompt and seed in each column: the base model above, the quality-tuned model below "
                         f"({len(rows)} pairs, {len(prompts)} prompts; up to {PER_PROMPT} pairs of the first "
                         f"{PROMPTS} prompts shown, pixels enlarged without smoothing).")
    for prompt in prompts[:PROMPTS]:
        sec.figure(_grid(prompt, [r for r in rows if r[0] == prompt][:PER_PROMPT]))


def _aesthetic(report: Report, study: dict[str, Any]) -> None:
    a = study["aesthetic"]
    scorer = study["scorer"]["kind"] + (f" ({study['scorer']['head']})" if study["scorer"]["head"] else "")
    sec = report.section("Judge: aesthetic score before and after",
                         f"Scorer: {scorer}; {study['scorer']['resize']}. Differences are after minus before over "
                         f"pairs with the same prompt and seed; the interval is a percentile bootstrap over pairs.")
    sec.key_values({"pairs": study["pairs"], "prompts": study["prompts"], "mean before": a["before"],
                    "mean after": a["after"], "mean paired difference": a["mean_diff"],
                    "95% interval": f"[{a['ci95'][0]:.4f}, {a['ci95'][1]:.4f}]",
                    "pairs where after scores higher": f"{a['after_higher']} ({100 * a['after_higher_share']:.1f}%)",
                    "pairs where before scores higher": a["before_higher"], "equal": a["equal"]})
    sec.figure(overlaid_histograms({side: [r[side]["aesthetic"] for r in study["images"]] for side in
                                    ("before", "after")}, "aesthetic score", "score in [0, 1]"),
               "Distribution of the aesthetic score over all samples; dashed lines are the means.")
    m = study["measures"]
    means = {side: [m[k][side] for k in PRIOR_MEASURES] for side in ("before", "after")}
    sec.figure(grouped_bars(list(PRIOR_MEASURES), means, "prior measures (means)", "[0, 1]"),
               "The four measures of the classical prior, mean over samples.")
    sec.table(["measure", "before", "after", "mean difference", "95% interval", "after higher"],
              [[k, m[k]["before"], m[k]["after"], m[k]["mean_diff"], f"[{m[k]['ci95'][0]:.4f}, {m[k]['ci95'][1]:.4f}]",
                f"{100 * m[k]['after_higher_share']:.1f}%"] for k in PRIOR_MEASURES])
    sec.table(["prompt", "pairs", "before", "after", "mean difference", "after higher"],
              [[p["prompt"], p["pairs"], p["before"], p["after"], p["mean_diff"],
                f"{100 * p['after_higher_share']:.1f}%"] for p in study["per_prompt"]], "Aesthetic score per prompt.")


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _ci(ci: list[float]) -> str:
    return "–" if ci[0] != ci[0] else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]%"


def _preference(report: Report, study_dir: Path) -> None:
    sec = report.section("Judge: blind pairwise preference",
                         "Raters saw both images of a pair side by side, placement randomised, and chose the better "
                         "one or no preference. Win rate: after wins / decisive votes (Wilson 95% interval); with "
                         "ties as half: (after wins + ties / 2) / votes; p: two-sided exact sign test.")
    if not read_votes(study_dir):
        sec.paragraph("No votes yet (tagsight judge serve STUDY).")
        return
    s = preference_stats(study_dir)
    groups = [("overall", s["overall"])] + [(f"rater {r}", t) for r, t in s["per_rater"].items()]
    sec.table(["", "votes", "after", "before", "ties", "win rate", "95% interval", "ties as half", "95% interval", "p"],
              [[name, t["votes"], t["after"], t["before"], t["ties"], _pct(t["win_rate"]), _ci(t["win_rate_ci95"]),
                _pct(t["win_rate_ties_half"]), _ci(t["win_rate_ties_half_ci95"]), f"{t['sign_test_p']:.3g}"]
               for name, t in groups])
    sec.figure(interval_plot([n for n, _ in groups], [t["win_rate"] for _, t in groups],
                             [t["win_rate_ci95"] for _, t in groups], "win rate of the quality-tuned model",
                             "after wins / decisive votes", 0.5), "Points: win rate; bars: Wilson 95% interval; "
                                                                   "dashed: no preference (50%).")
    ag, bias = s["agreement"], s["side_bias"]
    sec.key_values({"pairs in the study": s["pairs"], "pairs judged": s["pairs_judged"], "votes counted": s["counted"],
                    "earlier or undone votes kept in history": s["history_rows"],
                    "raters": ", ".join(s["raters"]), "rater overlap (shared judgements)": ag["shared_judgements"],
                    "percent agreement": _pct(ag["percent_agreement"]),
                    "Cohen's kappa": "–" if ag["cohen_kappa"] is None else f"{ag['cohen_kappa']:.3f}",
                    "left side chosen (decisive votes)": f"{_pct(bias['left_share'])} {_ci(bias['left_share_ci95'])}",
                    "no-preference votes": _pct(bias["none_share"])})


def add_judge_sections(report: Report, study_dir: str | Path) -> None:
    """Every judge section the study folder has inputs for."""
    study_dir = Path(study_dir)
    _grids(report, study_dir)
    aesthetic = read_aesthetic(study_dir)
    if aesthetic:
        _aesthetic(report, aesthetic)
    if (study_dir / PAIRS_FILE).is_file():
        _preference(report, study_dir)


def write_judge_report(study_dir: str | Path, out: str | Path) -> Path:
    from tagsight.fsio import ReasonError

    if not has_study(Path(study_dir)):
        raise ReasonError("not_a_study", f"{study_dir} has neither aesthetic.json nor pairs.json "
                                         "(tagsight judge aesthetic / pairs)")
    report = Report("Quality-tuning: before and after", str(study_dir))
    add_judge_sections(report, study_dir)
    return report.write(out)
