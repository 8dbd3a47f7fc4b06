"""The Markdown section of docs/benchmarks.md for one run of the accelerator check."""

from __future__ import annotations

import datetime as dt
from typing import Any

from common import markdown_table

COMMAND = ("python3 bench/gpu/prepare.py --out .gpu/data --data ../shared/data   # on the CPU machine\n"
           "python3 bench/gpu/run.py --data .gpu/data --out OUT                  # on the GPU machine\n"
           "python3 bench/gpu/run.py --publish OUT                               # back here: this section")


def markdown(record: dict[str, Any]) -> str:
    s = record["sections"]
    parts = [_header(record), *(_part(name, s[name]) for name in s)]
    return "\n\n".join(p for p in parts if p)


def _header(record: dict[str, Any]) -> str:
    env = record["sections"].get("environment", {}).get("result", {})
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    dry = record["mode"] == "dry"
    machine = (f"{env.get('gpu', 'CPU')}, {env.get('cpus')} CPU cores, torch {env.get('torch')}, "
               f"CUDA {env.get('cuda')}, cuDNN {env.get('cudnn')}") if not dry else f"CPU only, torch {env.get('torch')}"
    lines = [f"```\n{COMMAND}\n```", f"- {'DRY RUN on a CPU: tiny sizes; the real figures need a GPU' if dry else 'GPU run'}; "
             f"{when}; {machine}; sections took {record.get('total_s', 0)} s in all",
             f"- bf16 matmul measured: {env.get('matmul_tflops')} TFLOP/s ({env.get('matmul')}); datasheet dense bf16 "
             f"peak: {env.get('datasheet_bf16_tflops')} TFLOP/s"]
    failed = {n: r for n, r in record["sections"].items() if r["status"] != "ok"}
    lines += [f"- section `{n}`: **{r['status']}** ({r.get('error') or r.get('reason')})" for n, r in failed.items()]
    return "\n".join(lines)


def _part(name: str, section: dict[str, Any]) -> str:
    if section["status"] != "ok" or name == "environment":
        return ""
    return RENDER[name](section["result"], section["seconds"])


def _steps(rows: list[dict[str, Any]], seconds: float) -> str:
    compiled = rows[0]["compiled"] if rows else False
    title = (f"**Hashtag training step, compute only ({'torch.compile' if compiled else 'eager'})**: a batch already "
             "on the device, bf16 autocast, channels-last, SGD; FLOPs of forward + backward counted by "
             "`torch.utils.flop_counter`; MFU = achieved FLOP/s over the datasheet peak (and over the measured matmul).")
    table = markdown_table(["model", "px", "batch", "step ms", "img/s", "GFLOP/img", "TFLOP/s", "MFU", "MFU (matmul)",
                            "warm-up s", "peak GiB"],
                           [[r["model"], r["img"], r["batch"], r["step_ms"], r["images_per_s"], r["gflops_per_image"],
                             r["tflops"], r["mfu_datasheet"], r["mfu_measured_matmul"], r["warmup_s"], r["peak_gib"]]
                            for r in rows])
    return f"{title}\n\n{table}"


def _trainer(rows: list[dict[str, Any]], seconds: float) -> str:
    title = ("**The Trainer with the real input pipeline** (`pretrain`, hashtag objective, second logging window): "
             "data wait = time spent getting the next batch, compute = the rest of the step.")
    table = markdown_table(["run", "batch", "workers", "img/s", "step ms", "data wait ms", "compute ms", "peak GiB",
                            "wall s"],
                           [[r["run"], r["batch"], r["workers"], r["images_per_s"], r["step_ms"], r["data_wait_ms"],
                             r["compute_ms"], r["peak_gib"], r["wall_s"]] for r in rows])
    return f"{title}\n\n{table}"


def _pipeline(r: dict[str, Any], seconds: float) -> str:
    demand = markdown_table(["model", "compiled", "step img/s", "loader / step"],
                            [[d["model"], d["compiled"], d["step_images_per_s"], d["loader_over_step"]]
                             for d in r["demand"]])
    ways = markdown_table(["batches ship as", "normalised in the workers", "img/s", "first batch s"],
                          [[x["ships"], x["normalized_in_workers"], x["images_per_s"], x["first_batch_s"]]
                           for x in r["rows"]])
    return (f"**Input pipeline alone** (the hashtag stream's loader, {r['workers']} workers, batch {r['batch']} at "
            f"{r['img']} px; the Trainer on a GPU ships uint8 and normalises on the device):\n\n{ways}\n\n"
            f"One process alone, per image: decode + augment {r['one_process']['item_ms']} ms, stacking and "
            f"normalising {r['one_process']['normalize_ms']} ms.\n\n"
            f"Against each step's appetite (the faster way; >= 1: the loader keeps up):\n\n{demand}")


def _torchrun(r: dict[str, Any], seconds: float) -> str:
    return (f"**torchrun --nproc_per_node 1** (process group backend: {r['backend']}): SIGKILLed after "
            f"{r['killed_after_s']} s at checkpoint `{r['checkpoint_at_kill']}` (killed: {r['killed']}); rerun resumed "
            f"from step {r['resumed_from_step']} and finished at step {r['final_step']} (exit "
            f"{r['resume_returncode']}, {r['resume_wall_s']} s), held-out mAP {r['heldout_mAP']}.")


def _objective(r: dict[str, Any], seconds: float) -> str:
    extra = f"; VAE: {r['vae']}" if "vae" in r else ""
    return (f"**{r['run']}** preset, {r['steps']} steps at batch {r['batch']}: step {r['step_ms']} ms "
            f"({r['images_per_s']} img/s; data wait {r['data_wait_ms']} ms), peak memory {r['peak_gib']} GiB{extra}.")


def _latent(r: dict[str, Any], seconds: float) -> str:
    g = r["generate"]
    return (f"{_objective(r['vae_run'], seconds)}\n\n{_objective(r, seconds)} Then `generate` from it: {g['images']} "
            f"images at {g['size']} px, {g['steps']} DPM-Solver++ steps, {g['wall_s']} s with the model's loading.")


def _features(r: dict[str, Any], seconds: float) -> str:
    rows = ", ".join(f"batch {x['batch']}: {x['images_per_s']} img/s" for x in r["rows"])
    return f"**Eval feature extraction** ({r['model']} at {r['img']} px, {r['workers']} workers): {rows}."


def _serving(r: dict[str, Any], seconds: float) -> str:
    table = markdown_table(["clients", "requests", "non-200", "img/s", "p50 ms", "p99 ms"],
                           [[x["clients"], x["requests"], x["non_200"], x["images_per_s"], x["p50_ms"], x["p99_ms"]]
                            for x in r["rows"]])
    return (f"**tagsight serve on the device** (`/v1/hashtags`, max batch {r['max_batch']}, a bundle calibrated "
            f"from the torchrun run; closed-loop Python clients on the same machine):\n\n{table}")


RENDER = {"steps_eager": _steps, "steps_compiled": _steps, "trainer": _trainer, "input_pipeline": _pipeline,
          "torchrun": _torchrun, "swav": _objective, "latent_diffusion": _latent, "eval_features": _features,
          "serving": _serving}
