"""The measurements of the accelerator check, one function per section; each returns a JSON-ready dict.

Every section runs tagsight's own code paths: the hashtag objective and optimiser for the compute-only
steps, ``tagsight.train.pretrain.pretrain`` (the Trainer with the real input pipeline) for the
training runs, ``torchrun ... -m tagsight.cli pretrain`` for the distributed run and its kill/resume,
``extract_features`` for evaluation and ``tagsight serve`` for serving.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from common import kill_tree
from sizes import Sizes

log = logging.getLogger("bench.gpu")
REPO = Path(__file__).resolve().parents[2]
# Dense bf16 matrix peak by the vendor's datasheet (SXM parts), TFLOP/s.
DATASHEET_BF16_TFLOPS = {"H200": 989.4, "H100": 989.4, "A100": 312.0}


class Skipped(Exception):
    """A section that does not apply here (recorded as skipped, with the reason)."""


class Context:
    """What the sections share: sizes, device, the dataset and vocabulary, a scratch folder, results so far."""

    def __init__(self, sizes: Sizes, device: str, dataset: Path, vocab: Path, work: Path) -> None:
        self.sizes, self.device, self.dataset, self.vocab, self.work = sizes, device, dataset, vocab, work
        self.results: dict[str, Any] = {}

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def reset_memory(self) -> None:
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    def peak_gib(self) -> float | None:
        return round(torch.cuda.max_memory_allocated() / 2**30, 2) if self.cuda else None

    def labels(self) -> int:
        return len(json.loads(self.vocab.read_text())["labels"])


# --------------------------------------------------------------------------------------- environment


def environment(ctx: Context) -> dict[str, Any]:
    """The device, the software, and the bf16 matrix rate measured on it (the ceiling for the MFU figures)."""
    out: dict[str, Any] = {"torch": torch.__version__, "device": ctx.device, "cpus": os.cpu_count()}
    if ctx.cuda:
        props = torch.cuda.get_device_properties(0)
        out.update(gpu=props.name, sms=props.multi_processor_count, memory_gib=round(props.total_memory / 2**30, 1),
                   cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                   datasheet_bf16_tflops=_datasheet_peak(props.name))
    n, reps = (8192, 10) if ctx.cuda else (512, 3)
    dtype = torch.bfloat16 if ctx.cuda else torch.float32
    a, b = (torch.randn(n, n, device=ctx.device, dtype=dtype) for _ in range(2))
    seconds = _timed(ctx, lambda: a @ b, warmup=3, reps=reps)
    out["matmul_tflops"] = round(2 * n**3 / seconds / 1e12, 1)
    out["matmul"] = f"{n}x{n}x{n} {str(dtype).replace('torch.', '')}, mean of {reps}"
    return out


def _datasheet_peak(name: str) -> float | None:
    return next((v for k, v in DATASHEET_BF16_TFLOPS.items() if k in name), None)


def _timed(ctx: Context, fn: Callable[[], Any], warmup: int, reps: int) -> float:
    """Mean seconds of one call of ``fn`` (CUDA events on a GPU, wall clock on the CPU)."""
    for _ in range(warmup):
        fn()
    ctx.sync()
    if ctx.cuda:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(reps):
            fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1000 / reps
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


# --------------------------------------------------------------------------------------- compute-only steps


def training_steps(ctx: Context, compiled: bool) -> list[dict[str, Any]]:
    """Hashtag training steps on a batch already on the device: the compute ceiling, its FLOPs and MFU."""
    if compiled and not ctx.sizes.compile:
        raise Skipped("torch.compile is measured on the GPU only (inductor on 2 CPU cores takes minutes)")
    return [_step_row(ctx, name, compiled) for name in ctx.sizes.models]


def _step_row(ctx: Context, name: str, compiled: bool) -> dict[str, Any]:
    from tagsight.models.backbone import create_backbone
    from tagsight.methods.hashtag import HashtagObjective
    from tagsight.train.optim import build_optimizer
    from tagsight.train.settings import OptimConfig

    s = ctx.sizes
    ctx.reset_memory()
    torch.manual_seed(0)
    model = HashtagObjective(create_backbone(name, img_size=s.img), ctx.labels()).to(ctx.device)
    if ctx.cuda:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model.parameters(), OptimConfig(), s.batch)
    batch = _synthetic_batch(ctx, s.batch, s.img, ctx.labels())
    forward = torch.compile(model) if compiled else model

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with _autocast(ctx):
            loss = forward(batch)["loss"]
        loss.backward()
        optimizer.step()

    flops = _flops(ctx, model, batch)
    t0 = time.perf_counter()
    for _ in range(s.warmup):
        step()
    ctx.sync()
    warm = time.perf_counter() - t0
    seconds = _timed(ctx, step, warmup=0, reps=s.steps)
    row = _rate_row(ctx, name, compiled, seconds, flops, warm)
    if compiled:
        torch._dynamo.reset()
    return row


def _rate_row(ctx: Context, name: str, compiled: bool, seconds: float, flops: float, warm: float) -> dict[str, Any]:
    env = ctx.results.get("environment", {})
    achieved = flops / seconds / 1e12
    peak, measured = env.get("datasheet_bf16_tflops"), env.get("matmul_tflops")
    return {"model": name, "img": ctx.sizes.img, "batch": ctx.sizes.batch, "compiled": compiled,
            "step_ms": round(1000 * seconds, 2), "images_per_s": round(ctx.sizes.batch / seconds, 1),
            "gflops_per_image": round(flops / ctx.sizes.batch / 1e9, 2), "tflops": round(achieved, 1),
            "mfu_datasheet": round(achieved / peak, 3) if peak else None,
            "mfu_measured_matmul": round(achieved / measured, 3) if measured else None,
            "warmup_s": round(warm, 1), "peak_gib": ctx.peak_gib()}


def _synthetic_batch(ctx: Context, batch: int, img: int, labels: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    image = torch.randn(batch, 3, img, img, generator=g)
    target = torch.zeros(batch, labels)
    target[torch.arange(batch), torch.randint(0, labels, (batch,), generator=g)] = 1.0
    image = image.to(ctx.device)
    if ctx.cuda:
        image = image.contiguous(memory_format=torch.channels_last)
    return {"image": image, "target": target.to(ctx.device)}


def _autocast(ctx: Context):
    import contextlib

    return torch.autocast("cuda", dtype=torch.bfloat16) if ctx.cuda else contextlib.nullcontext()


def _flops(ctx: Context, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> float:
    """FLOPs of one forward + backward, counted by ``torch.utils.flop_counter`` (eager, same autocast)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, _autocast(ctx):
        model(batch)["loss"].backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


# --------------------------------------------------------------------------------------- the Trainer


def trainer_runs(ctx: Context) -> list[dict[str, Any]]:
    """``pretrain`` (Trainer + real input pipeline) per backbone: images/s and the data-vs-compute split."""
    rows = []
    for name in ctx.sizes.models:
        run = ctx.work / f"trainer-{name}"
        rows.append(_pretrain_row(ctx, name, run, hashtag_overrides(ctx, name, ctx.sizes.trainer_steps)))
    return rows


def hashtag_overrides(ctx: Context, name: str, steps: int) -> list[str]:
    s = ctx.sizes
    return [f"model.name={name}", f"model.img_size={s.img}", f"data.batch_size={s.batch}",
            f"data.epoch_length={s.batch * steps * 2}", f"data.workers={s.workers}", f"data.holdout_fraction={s.holdout}",
            f"loop.max_steps={steps}", f"loop.log_every={max(steps // 2, 1)}", f"loop.checkpoint_every={steps}",
            "loop.epochs=1"]


def _pretrain_row(ctx: Context, name: str, run: Path, overrides: list[str], config: Path | None = None,
                  objective: str = "hashtag") -> dict[str, Any]:
    import tagsight.cli.methods  # noqa: F401  (every method registered, the generator's too, as the CLI does)
    from tagsight.train.config import PretrainConfig
    from tagsight.train.distributed import DistEnv
    from tagsight.train.pretrain import pretrain

    cfg = PretrainConfig.from_yaml(config, [f"objective.name={objective}", *overrides])
    ctx.reset_memory()
    t0 = time.perf_counter()
    pretrain(ctx.dataset, ctx.vocab, run, cfg, DistEnv(device=ctx.device))
    wall = time.perf_counter() - t0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    last = rows[-1]   # the second window: warm-up (cuDNN autotuning, loader start) is in the first
    return {"run": name, "objective": objective, "batch": cfg.data.batch_size, "workers": cfg.data.workers,
            "steps": last["step"], "images_per_s": round(last["samples_per_s"], 1),
            "step_ms": round(1000 * (last["data_s"] + last["compute_s"]), 1),
            "data_wait_ms": round(1000 * last["data_s"], 1), "compute_ms": round(1000 * last["compute_s"], 1),
            "loss": round(last["loss"], 4), "wall_s": round(wall, 1), "peak_gib": ctx.peak_gib()}


# --------------------------------------------------------------------------------------- input pipeline


def input_pipeline(ctx: Context) -> dict[str, Any]:
    """The hashtag stream's loader alone (``workers`` processes), against the training step's demand."""
    from tagsight.data.index import SampleIndex
    from tagsight.data.pipeline import HashtagStream, StreamConfig, make_loader
    from tagsight.data.transforms import train_transform
    from tagsight.models.backbone import create_backbone
    from tagsight.tags.vocab import Vocabulary

    s = ctx.sizes
    data_config = create_backbone(s.models[0], img_size=s.img).data_config
    cfg = StreamConfig(epoch_length=s.batch * (s.pipeline_batches + 1), batch_size=s.batch, seed=0)
    stream = HashtagStream(SampleIndex.build(ctx.dataset), Vocabulary.load(ctx.vocab), train_transform(data_config), cfg)
    rows = [_loader_rate(make_loader(stream, s.workers, pin_memory=ctx.cuda, normalize=normalize), normalize)
            for normalize in (True, False)]
    best = max(r["images_per_s"] for r in rows)
    return {"workers": s.workers, "batch": s.batch, "img": s.img, "rows": rows, "images_per_s": best,
            "one_process": _one_process(stream, s.batch), "demand": _demand(ctx, best)}


def _one_process(stream: Any, n: int) -> dict[str, Any]:
    """Per-image cost in this process alone: decode + augment (``item``), then the batch's normalisation."""
    from tagsight.data.pipeline import batch_normalizer, collate

    torch.set_num_threads(1)   # as in a loader worker
    positions = range(n)
    t0 = time.perf_counter()
    items = [stream.item(int(stream.order(0)[p]), p) for p in positions]
    t1 = time.perf_counter()
    collate(items, batch_normalizer(stream))
    t2 = time.perf_counter()
    torch.set_num_threads(os.cpu_count() or 1)
    return {"item_ms": round(1000 * (t1 - t0) / n, 3), "normalize_ms": round(1000 * (t2 - t1) / n, 3)}


def _loader_rate(loader: Any, normalized: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    batches = iter(loader)
    first_batch = next(batches)
    first = time.perf_counter() - t0
    t1, n = time.perf_counter(), 0
    for batch in batches:
        n += len(batch["image"])
    return {"ships": str(first_batch["image"].dtype).replace("torch.", ""), "normalized_in_workers": normalized,
            "first_batch_s": round(first, 2), "images_per_s": round(n / (time.perf_counter() - t1), 1)}


def _demand(ctx: Context, rate: float) -> list[dict[str, Any]]:
    """The loader's rate over each measured training step's appetite (>= 1: the GPU is never starved)."""
    rows = [*ctx.results.get("steps_eager", []), *ctx.results.get("steps_compiled", [])]
    return [{"model": r["model"], "compiled": r["compiled"], "step_images_per_s": r["images_per_s"],
             "loader_over_step": round(rate / r["images_per_s"], 2)} for r in rows]


# --------------------------------------------------------------------------------------- torchrun + kill/resume


def torchrun_kill_resume(ctx: Context) -> dict[str, Any]:
    """``torchrun --nproc_per_node 1`` (NCCL on CUDA), SIGKILLed after its first checkpoint, then rerun to the end."""
    from tagsight.train.checkpoint import latest_checkpoint

    s = ctx.sizes
    run = ctx.work / "torchrun"
    overrides = hashtag_overrides(ctx, s.models[0], s.torchrun_steps)
    overrides[-2] = f"loop.checkpoint_every={s.torchrun_checkpoint}"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
           "-m", "tagsight.cli", "pretrain", str(ctx.dataset), "--vocab", str(ctx.vocab), "--out", str(run),
           *[a for o in overrides for a in ("--set", o)]]
    first = _run_until_checkpoint(cmd, run, latest_checkpoint, ctx.work / "torchrun-1.log")
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=_child_env())
    (ctx.work / "torchrun-2.log").write_text(done.stdout + done.stderr)
    result = json.loads((run / "eval.json").read_text()) if (run / "eval.json").is_file() else {}
    log_text = done.stdout + done.stderr + (ctx.work / "torchrun-1.log").read_text()
    return {**first, "resume_returncode": done.returncode, "resume_wall_s": round(time.perf_counter() - t0, 1),
            "resumed_from_step": _resumed_step(done.stdout + done.stderr), "final_step": result.get("step"),
            "backend": _backend(log_text), "heldout_mAP": result.get("trained", {}).get("mAP"),
            "run": str(run)}


def _run_until_checkpoint(cmd: list[str], run: Path, latest: Callable[[Path], Path | None],
                          log_path: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    with open(log_path, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=_child_env())
        while latest(run) is None and proc.poll() is None and time.perf_counter() - t0 < 600:
            time.sleep(0.2)
        killed = proc.poll() is None
        if killed:
            kill_tree(proc.pid)   # the launcher and its worker, which runs in a session of its own
        proc.wait()
    found = latest(run)
    return {"killed": killed, "killed_after_s": round(time.perf_counter() - t0, 1),
            "checkpoint_at_kill": found.name if found else None, "first_returncode": proc.returncode}


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def _resumed_step(text: str) -> int | None:
    import re

    m = re.search(r"resumed from \S+: step (\d+)", text)
    return int(m.group(1)) if m else None


def _backend(text: str) -> str | None:
    import re

    m = re.search(r"joined the process group \((\w+)\)", text)
    return m.group(1) if m else None


# --------------------------------------------------------------------------------------- SwAV and latent diffusion


def swav(ctx: Context) -> dict[str, Any]:
    """The SEER-style SwAV preset (RegNetY-16GF, multi-crop 2 x 224 + 6 x 96) for a few steps."""
    s = ctx.sizes
    overrides = [*s.swav_overrides, f"data.workers={s.workers}", "data.holdout_fraction=0.05",
                 f"data.epoch_length={4096 if ctx.cuda else 64}", f"loop.max_steps={s.objective_steps}",
                 f"loop.log_every={max(s.objective_steps // 2, 1)}", f"loop.checkpoint_every={s.objective_steps}"]
    return _pretrain_row(ctx, "swav", ctx.work / "swav", overrides, REPO / "configs/pretrain_swav_regnety.yaml",
                         objective="swav")


def latent_diffusion(ctx: Context) -> dict[str, Any]:
    """The latent path end to end, with nothing downloaded: the VAE preset (``configs/pretrain_vae_gpu.yaml``) trained
    for a few steps by the Trainer, its exported ``RUN/vae`` as ``objective.vae_path`` of the latent diffusion preset
    (256 px, ~100M-parameter UNet) for a few steps, then ``generate`` from that run.

    A few VAE steps give a poor autoencoder: the point is the path (and the timings), not the pictures.
    """
    s = ctx.sizes
    vae_run, run = ctx.work / "vae-run", ctx.work / "diffusion"
    short = [f"data.workers={s.workers}", "data.holdout_fraction=0.05", f"data.epoch_length={4096 if ctx.cuda else 64}",
             f"loop.max_steps={s.objective_steps}", f"loop.log_every={max(s.objective_steps // 2, 1)}",
             f"loop.checkpoint_every={s.objective_steps}"]
    vae = _pretrain_row(ctx, "vae", vae_run, [*s.vae_overrides, *short], REPO / "configs/pretrain_vae_gpu.yaml",
                        objective="vae")
    measured = json.loads((vae_run / "eval.json").read_text())
    overrides = [*s.diffusion_overrides, f"objective.diffusion.vae_path={vae_run / 'vae'}", *short]
    row = _pretrain_row(ctx, "latent-diffusion", run, overrides,
                        REPO / "configs/pretrain_diffusion_gpu_latent.yaml", objective="diffusion")
    held = measured["heldout_reconstruction"]
    return {**row, "vae": f"trained here ({vae['steps']} steps, {vae['step_ms']} ms/step at batch {vae['batch']}, "
                          f"held-out PSNR {held['trained']['psnr']:.2f} dB, untrained {held['untrained']['psnr']:.2f} dB,"
                          f" scaling factor {measured['latents']['scaling_factor']:.4f})",
            "vae_run": vae, "vae_eval": measured, "generate": _generate(ctx, run)}


def _generate(ctx: Context, run: Path) -> dict[str, Any]:
    """``tagsight generate``'s code on the latent run: 4 images of its first vocabulary label."""
    from tagsight.generate.runs import load_generator
    from tagsight.generate.sample import SampleSettings, write_samples

    t0 = time.perf_counter()
    generator = load_generator(run, device=ctx.device)
    tag = "#" + sorted(json.loads((run / "tokens.json").read_text())["lookup"])[0]
    settings = SampleSettings(steps=ctx.sizes.generate_steps, guidance=3.0, sampler="dpm")
    rows = write_samples(generator, [tag], 4, ctx.work / "samples", settings=settings)
    ctx.sync()
    return {"images": len(rows), "size": rows[0]["size"], "steps": settings.steps,
            "wall_s": round(time.perf_counter() - t0, 1)}


# --------------------------------------------------------------------------------------- eval features


def eval_features(ctx: Context) -> dict[str, Any]:
    """``extract_features`` (the kNN / linear-probe path) with the first backbone over the dataset's photos."""
    from tagsight.eval.datasets import open_labelled
    from tagsight.eval.features import extract_features
    from tagsight.models.backbone import create_backbone
    from tagsight.train.distributed import DistEnv

    folder = _photo_folder(ctx, ctx.sizes.feature_images)
    images = open_labelled(folder)
    backbone = create_backbone(ctx.sizes.models[0], img_size=ctx.sizes.img).to(ctx.device)
    if ctx.cuda:
        backbone = backbone.to(memory_format=torch.channels_last)
    rows = []
    for batch in (64, 256) if ctx.cuda else (8,):
        t0 = time.perf_counter()
        feats, _ = extract_features(backbone, images, batch_size=batch, workers=ctx.sizes.workers,
                                    env=DistEnv(device=ctx.device))
        seconds = time.perf_counter() - t0
        rows.append({"batch": batch, "images": len(images), "images_per_s": round(len(images) / seconds, 1),
                     "wall_s": round(seconds, 2), "dim": int(feats.shape[1])})
    return {"model": ctx.sizes.models[0], "img": ctx.sizes.img, "workers": ctx.sizes.workers, "rows": rows}


def _photo_folder(ctx: Context, n: int) -> Path:
    """The first ``n`` stored photos of the dataset as a class folder (the layout eval takes)."""
    from tagsight.data.index import SampleIndex

    folder = ctx.work / "photos"
    (folder / "all").mkdir(parents=True, exist_ok=True)
    index = SampleIndex.build(ctx.dataset)
    for i in range(min(n, len(index))):
        (folder / "all" / f"{i:05d}.jpg").write_bytes(index.read_jpeg(i))
    return folder


# --------------------------------------------------------------------------------------- serving


def serving(ctx: Context) -> dict[str, Any]:
    """``tagsight serve`` on the device with a bundle calibrated from the torchrun run; 8 and 32 clients."""
    run = _served_run(ctx)
    bundle = ctx.work / "bundle"
    cli = [sys.executable, "-m", "tagsight.cli"]
    cal = subprocess.run([*cli, "apps", "calibrate", str(run), "--out", str(bundle), "--device", ctx.device],
                         capture_output=True, text=True, timeout=300, env=_child_env())
    if cal.returncode != 0:
        raise RuntimeError(f"apps calibrate failed: {cal.stderr[-2000:]}")
    port = _free_port()
    server = subprocess.Popen([*cli, "serve", str(bundle), "--port", str(port), "--device", ctx.device,
                               "--max-batch", "32", "--max-wait-ms", "5"], stdout=subprocess.DEVNULL,
                              stderr=open(ctx.work / "serve.log", "w"), start_new_session=True, env=_child_env())
    try:
        _wait_healthy(port, server)
        photos = [p.read_bytes() for p in sorted((ctx.work / "photos" / "all").glob("*.jpg"))[:64]] or \
            [p.read_bytes() for p in sorted(_photo_folder(ctx, 64).glob("all/*.jpg"))]
        _load(port, photos, 4, 1.0)   # warm-up: first batches, cuDNN autotuning
        rows = [{"clients": c, **_load(port, photos, c, ctx.sizes.serve_seconds)} for c in ctx.sizes.clients]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    return {"app": "hashtags", "bundle_from": str(run), "max_batch": 32, "rows": rows}


def _served_run(ctx: Context) -> Path:
    for candidate in (ctx.work / "torchrun", ctx.work / f"trainer-{ctx.sizes.models[0]}"):
        if (candidate / "eval.json").is_file():
            return candidate
    run = ctx.work / "serve-run"
    _pretrain_row(ctx, ctx.sizes.models[0], run, hashtag_overrides(ctx, ctx.sizes.models[0], 2))
    return run


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(port: int, server: subprocess.Popen, timeout: float = 120.0) -> None:
    import httpx

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode} before it was healthy")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the server was not healthy after {timeout:.0f} s")


def _load(port: int, photos: list[bytes], clients: int, seconds: float) -> dict[str, Any]:
    """A closed loop: ``clients`` threads each post the next photo when their last answer arrived."""
    import httpx

    url = f"http://127.0.0.1:{port}/v1/hashtags"
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client(k: int) -> None:
        with httpx.Client(timeout=30) as http:
            i = k
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                r = http.post(url, files={"image": ("p.jpg", photos[i % len(photos)], "image/jpeg")})
                with lock:
                    (latencies.append(time.perf_counter() - t0) if r.status_code == 200 else None)
                    errors[0] += r.status_code != 200
                i += clients

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.perf_counter() - t0
    ms = np.asarray(latencies) * 1000 if latencies else np.asarray([np.nan])
    return {"requests": len(latencies), "non_200": errors[0], "images_per_s": round(len(latencies) / wall, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1)}


def scratch(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
