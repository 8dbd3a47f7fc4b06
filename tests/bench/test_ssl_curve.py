"""bench/ssl/curve.py: the budget curve averages seeds per budget, puts multi-crop and single-crop runs on one
compute axis (backbone pixels), adds hashtag runs from their evaluation results, and refuses what it cannot read."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SWAV_PIXELS = 2 * 64 ** 2 + 2 * 32 ** 2        # configs/pretrain_swav_cpu_small.yaml's multi-crop


def _curve() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ssl_curve", REPO / "bench" / "ssl" / "curve.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(method: str, impl: str, seed: int, steps: int, knn: float, lin: float) -> dict[str, object]:
    return {"method": method, "impl": impl, "seed": seed, "steps": steps, "batch": 64, "knn_top1": knn,
            "linear_top1": lin}


def _bench_folders(tmp_path: Path) -> list[Path]:
    spec = {"presets": {"swav": "configs/pretrain_swav_cpu_small.yaml"}}
    folders = []
    for name, rows in (("x1", [_row("swav", "random", 0, 10, 0.2, 0.3), _row("swav", "tagsight", 0, 10, 0.3, 0.4),
                               _row("swav", "tagsight", 1, 10, 0.5, 0.6)]),
                       ("x4", [_row("swav", "random", 0, 40, 0.2, 0.3), _row("swav", "tagsight", 0, 40, 0.6, 0.7)])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps({"spec": spec, "runs": rows}))
        folders.append(tmp_path / name)
    return folders


def _hashtag_run(tmp_path: Path, epochs: int, results: dict[str, float]) -> Path:
    run = tmp_path / f"hashtag-{epochs}"
    (run / "transfer").mkdir(parents=True)
    config = {"model": {"name": "resnet18", "img_size": 64}, "data": {"epoch_length": 256, "batch_size": 64},
              "loop": {"epochs": epochs}}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    for method, top1 in results.items():
        (run / "transfer" / f"{method}-abc.json").write_text(json.dumps({"method": method, "metrics": {"top1": top1}}))
    return run


def test_the_curve_averages_seeds_per_budget_on_the_compute_axis(tmp_path: Path) -> None:
    curve = _curve()
    curves = curve.points(_bench_folders(tmp_path))
    assert curves[("swav", "tagsight")] == [(640 * SWAV_PIXELS, 640, pytest.approx(40.0), pytest.approx(50.0), (0, 1)),
                                            (2560 * SWAV_PIXELS, 2560, pytest.approx(60.0), pytest.approx(70.0), (0,))]
    assert [p[4] for p in curves[("-", "random")]] == [(0,), (0,)]      # one floor per seed and budget


def test_a_folder_can_give_only_some_methods(tmp_path: Path) -> None:
    curve = _curve()
    x1, x4 = _bench_folders(tmp_path)
    assert curve.split_folder(f"{x1}:dino,hashtags") == (x1, {"dino", "hashtags"})
    assert curve.split_folder(str(x1)) == (x1, None)
    curves = curve.points([x1, x4], [None, {"dino"}])
    assert [p[1] for p in curves[("swav", "tagsight")]] == [640]         # x4's SwAV runs left out
    assert [p[1] for p in curves[("-", "random")]] == [640, 2560]        # its random floor kept


def test_hashtag_runs_join_the_curve_at_their_own_compute(tmp_path: Path) -> None:
    curve = _curve()
    runs = [_hashtag_run(tmp_path, 8, {"knn": 0.55, "linear": 0.6}), _hashtag_run(tmp_path, 2, {"knn": 0.45, "linear": 0.5})]
    curves = curve.combine(curve.bench_cells(_bench_folders(tmp_path)), curve.hashtag_cells(runs))
    assert curves[("hashtags", "tagsight")] == [(512 * 64 ** 2, 512, pytest.approx(45.0), pytest.approx(50.0), (0,)),
                                                (2048 * 64 ** 2, 2048, pytest.approx(55.0), pytest.approx(60.0), (0,))]
    assert "| hashtags | tagsight | 2,048 | 8 | 1 | 55.0 | 60.0 |" in curve.table(curves)


def test_the_cli_draws_the_plot_and_refuses_what_it_cannot_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    curve = _curve()
    x1, x4 = _bench_folders(tmp_path)
    run = _hashtag_run(tmp_path, 2, {"knn": 0.45, "linear": 0.5})
    assert curve.main([str(x1), str(x4), "--hashtag", str(run), "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").read_bytes().startswith(b"\x89PNG")
    assert "| hashtags | tagsight |" in capsys.readouterr().out
    assert curve.main([str(tmp_path / "none"), "--out", str(tmp_path / "d.png")]) == 2
    unevaluated = _hashtag_run(tmp_path, 3, {"knn": 0.45})
    assert curve.main([str(x1), "--hashtag", str(unevaluated), "--out", str(tmp_path / "e.png")]) == 2
    assert "tagsight eval knn|linear" in capsys.readouterr().err


def test_a_diverged_arm_is_left_off_the_curve(tmp_path: Path) -> None:
    curve = _curve()
    folders = _bench_folders(tmp_path)
    doc = json.loads((folders[0] / "results.json").read_text())
    doc["runs"].append({"method": "swav", "impl": "lightly", "seed": 0, "steps": 10, "batch": 64,
                        "diverged_at": 4, "last_loss": None})
    (folders[0] / "results.json").write_text(json.dumps(doc))
    curves = curve.points(folders)
    assert ("swav", "lightly") not in curves and len(curves[("swav", "tagsight")]) == 2


def test_saved_points_merge_with_new_runs_and_outlive_their_folders(tmp_path: Path) -> None:
    curve = _curve()
    x1, x4 = _bench_folders(tmp_path)
    saved = tmp_path / "points.json"
    assert curve.main([str(x1), "--out", str(tmp_path / "a.png"), "--save-points", str(saved)]) == 0
    again = curve.combine(curve.ledger_cells(saved))
    assert again == curve.points([x1])                          # the file alone draws the same curve
    seed2 = tmp_path / "x4-seed2"
    seed2.mkdir()
    spec = {"presets": {"swav": "configs/pretrain_swav_cpu_small.yaml"}}
    rows = [_row("swav", "random", 2, 10, 0.4, 0.5), _row("swav", "tagsight", 2, 10, 0.8, 0.9),
            _row("swav", "random", 0, 10, 0.2, 0.3)]           # seed 0's floor again: the same weights
    (seed2 / "results.json").write_text(json.dumps({"spec": spec, "runs": rows}))
    merged = curve.combine(curve.ledger_cells(saved), curve.bench_cells([seed2]))
    assert merged[("swav", "tagsight")][0][2:] == (pytest.approx(100 * (0.3 + 0.5 + 0.8) / 3),
                                                  pytest.approx(100 * (0.4 + 0.6 + 0.9) / 3), (0, 1, 2))
    assert merged[("-", "random")][0][2:] == (pytest.approx(30.0), pytest.approx(40.0), (0, 2))


def test_a_trained_seed_given_twice_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    curve = _curve()
    x1, _ = _bench_folders(tmp_path)
    saved = tmp_path / "points.json"
    assert curve.main([str(x1), "--out", str(tmp_path / "a.png"), "--save-points", str(saved)]) == 0
    assert curve.main([str(x1), "--points", str(saved), "--out", str(tmp_path / "b.png")]) == 2
    assert "seed(s) [0, 1] given twice" in capsys.readouterr().err
    assert curve.main(["--out", str(tmp_path / "c.png")]) == 2
