"""The judge sections of the HTML report: sample grids before/after, aesthetic distributions, preference.

``add_judge_sections(report, study_dir)`` adds what the study folder holds: ``aesthetic.json``
(``tagsight judge aesthetic``), a pair study (``tagsight judge pairs``, votes from ``judge serve``, several
raters' copies merged by ``judge merge``) and ``adherence.json`` (``tagsight judge adherence``: prompt
adherence against chance and real photos, and the Fréchet distance to real photos).
The run report shows them for any run folder with a ``judge/`` study inside.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tagsight.curate.filters.aesthetic import PRIOR_MEASURES
from tagsight.curate.judge.adherence import read_adherence
from tagsight.curate.judge.aesthetic import read_aesthetic
from tagsight.curate.judge.pairs import IMAGES_DIR, PAIRS_FILE, PairStudy
from tagsight.curate.judge.preference import preference_stats
from tagsight.curate.judge.votes import read_votes
from tagsight.report.html import Report
from tagsight.report.plots import grouped_bars, interval_plot, new_figure, overlaid_histograms

PROMPTS = 12      # prompts shown in the sample grids
PER_PROMPT = 6    # sample pairs shown per prompt


def has_study(study_dir: Path) -> bool:
    return (read_aesthetic(study_dir) is not None or (study_dir / PAIRS_FILE).is_file()
            or read_adherence(study_dir) is not None)


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
                    "Fleiss' kappa (pairs every rater judged)": "–" if ag.get("fleiss_kappa") is None
                    else f"{ag['fleiss_kappa']:.3f} over {ag['fleiss_pairs']} pairs",
                    "pooled win rate (95% interval, pairs resampled)":
                    f"{_pct(s['pooled']['win_rate'])} {_ci(s['pooled']['win_rate_ci95_pairs_bootstrap'])}",
                    "left side chosen (decisive votes)": f"{_pct(bias['left_share'])} {_ci(bias['left_share_ci95'])}",
                    "no-preference votes": _pct(bias["none_share"])})


def _fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _adherence(report: Report, a: dict[str, Any]) -> None:
    real = a["real"]
    sec = report.section("Judge: does the generator draw the prompted concept?",
                         f"Judge: {a['classifier']['name']}, which did not train the generator; it names the most "
                         f"probable of the {len(a['concepts'])} prompted concepts ({a['classifier']['mapping']}), so "
                         f"chance is {_pct(a['chance'])}. Real photos of the concepts are "
                         f"downsampled to the samples' {a['size']} px: the ceiling at that resolution. Intervals: "
                         "Wilson 95%.")
    sets = a["sets"]
    series: dict[str, list[float]] = {s["name"]: [r["accuracy"] for r in s["per_prompt"]] for s in sets}
    if real:
        series[f"real photos at {a['size']} px"] = [c["accuracy"] if c["accuracy"] is not None else float("nan")
                                                    for c in real["per_concept"]]
    series["chance"] = [a["chance"]] * len(a["concepts"])
    sec.figure(grouped_bars([c["prompt"] for c in a["concepts"]], series, "share judged as the prompted concept",
                            "accuracy"), "Per prompt: each sample folder, real photos of the concept, and chance.")
    headers = ["prompt", "concept"] + [f"{s['name']} (95% interval)" for s in sets] + (["real photos"] if real else [])
    rows = []
    for k, c in enumerate(a["concepts"]):
        cells = [f"{_pct(s['per_prompt'][k]['accuracy'])} {_ci(s['per_prompt'][k]['ci95'])}" for s in sets]
        rc = real["per_concept"][k] if real else None
        rows.append([c["prompt"], c["concept"], *cells] + ([f"{_pct(rc['accuracy'])} {_ci(rc['ci95'])}"] if rc else []))
    rows.append(["all", "", *[f"{_pct(s['accuracy'])} {_ci(s['ci95'])}" for s in sets]]
                + ([f"{_pct(real['accuracy'])} {_ci(real['ci95'])}"] if real else []))
    sec.table(headers, rows, "Accuracy per prompt.")
    sec.table(["sample folder", "images", "guidance", "prompts above chance", "prompts at half the real accuracy",
               "spread between prompts / between seeds"],
              [[s["name"], s["images"], s["guidance"], f"{s['prompts_above_chance']} of {len(s['per_prompt'])}",
                f"{s['prompts_half_of_real']} of {len(s['per_prompt'])}" if real else "–", _spread(s.get("spread"))]
               for s in sets],
              "Spread: RMS pixel distance (0-255) of each sample to the mean of its seed's samples over the prompts, "
              "and to the mean of its prompt's samples over the seeds; near 0 between prompts when the prompt "
              "changes nothing. '–' when the prompts were not all drawn from the same seeds.")
    if a.get("frechet"):
        _frechet(report, a)


def _spread(spread: dict[str, Any] | None) -> str:
    return "–" if not spread else f"{spread['between_prompts']:.1f} / {spread['between_seeds']:.1f}"


def _frechet(report: Report, a: dict[str, Any]) -> None:
    f = a["frechet"]
    sec = report.section("Judge: Fréchet distance to real photos",
                         f"Backbone: {f['backbone']}, {f['features']} (not Inception: values compare only with "
                         f"measurements on this backbone, image size and set sizes). Reference: "
                         f"{f['reference_images']} real photos; floor: {f['real_floor']['images']} other real photos "
                         f"against the same reference. Intervals: percentile bootstrap resampling both sets "
                         f"({f['resamples']} resamples).")
    names = [s["name"] for s in a["sets"]] + ["real photos (floor)"]
    values = [s["frechet"]["distance"] for s in a["sets"]] + [f["real_floor"]["distance"]]
    cis = [s["frechet"]["ci95"] for s in a["sets"]] + [f["real_floor"]["ci95"]]
    sec.figure(_distance_plot(names, values, cis), "Points: distance; bars: bootstrap 95% interval (resampled "
                                                   "sets sit further apart than the full ones: the estimate's "
                                                   "small-set bias). Lower is closer to real photos.")
    sec.table(["set", "images", "distance", "95% interval"],
              [[n, s["images"] if i < len(a["sets"]) else f["real_floor"]["images"], _fmt(v, 2),
                f"[{_fmt(c[0], 2)}, {_fmt(c[1], 2)}]"]
               for i, (n, v, c, s) in enumerate(zip(names, values, cis, a["sets"] + [{}]))])
    if f.get("differences"):
        sec.table(["set", "minus", "difference", "95% interval (paired bootstrap)", "reading"],
                  [[d["set"], d["minus"], _fmt(d["difference"], 2), f"[{_fmt(d['ci95'][0], 2)}, {_fmt(d['ci95'][1], 2)}]",
                    _closer(d)] for d in f["differences"]])


def _closer(d: dict[str, Any]) -> str:
    lo, hi = d["ci95"]
    if hi < 0:
        return f"{d['set']} is closer to the photos"
    if lo > 0:
        return f"{d['minus']} is closer to the photos"
    return "no difference shown"


def _distance_plot(names: list[str], values: list[float], intervals: list[list[float]]) -> Any:
    """Distances, one row each with its interval as a horizontal bar (not a proportion: the axis starts at 0)."""
    fig, ax = new_figure((6.4, max(1.8, 0.35 * len(names) + 1.0)))
    y = np.arange(len(names))
    lo, hi = np.array([i[0] for i in intervals]), np.array([i[1] for i in intervals])
    ax.hlines(y, lo, hi, color="#4c78a8", linewidth=2)
    ax.plot(values, y, "o", color="#4c78a8")
    ax.set_yticks(y, labels=names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, None)
    ax.set_title("Fréchet distance to real photos", fontsize=10)
    ax.set_xlabel("squared distance on the judge's pooled features")
    return fig


def add_judge_sections(report: Report, study_dir: str | Path) -> None:
    """Every judge section the study folder has inputs for."""
    study_dir = Path(study_dir)
    _grids(report, study_dir)
    aesthetic = read_aesthetic(study_dir)
    if aesthetic:
        _aesthetic(report, aesthetic)
    if (study_dir / PAIRS_FILE).is_file():
        _preference(report, study_dir)
    adherence = read_adherence(study_dir)
    if adherence:
        _adherence(report, adherence)


def write_judge_report(study_dir: str | Path, out: str | Path) -> str | Path:
    """The study's HTML page written to ``out`` (a local file, or an fsspec URL: one object put whole); the page
    names the study where it lives (its URL for a mirrored copy)."""
    from tagsight.fsio import ReasonError
    from tagsight.storage import location, write_text

    if not has_study(Path(study_dir)):
        raise ReasonError("not_a_study", f"{location(study_dir)} has no aesthetic.json, pairs.json or adherence.json "
                                         "(tagsight judge aesthetic / pairs / adherence)")
    report = Report("Quality-tuning: before and after", location(study_dir))
    add_judge_sections(report, study_dir)
    return write_text(out, report.render())
