"""Engines: the same ingest bytes from the local pool and from Ray; a killed worker's block retried; a killed
driver resumed from the finished blocks."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from tagsight.cli import main
from tagsight.engines import ENGINES, EngineConfig, LocalEngine, RayEngine, create_engine
from tagsight.ingest.images import ImageConfig
from tagsight.ingest.pipeline import IngestConfig, ingest
from tagsight.ingest.sources import open_source

CFG = IngestConfig(samples_per_shard=3, workers=1, chunk_size=2, image=ImageConfig(max_side=32))
REPO = Path(__file__).resolve().parents[2]


def dataset_bytes(folder: Path) -> dict[str, bytes]:
    """Every file of a dataset (manifest, catalog, shards), by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run(src: Path, out: Path, engine=None, cfg: IngestConfig = CFG):
    return ingest(open_source(src, "jsonl", name="t"), out, cfg=cfg, engine=engine)


def photo_posts(folder: Path, make_picture, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        make_picture(i, (40, 32)).save(folder / f"{i}.jpg")
        lines.append(f'{{"post_id": "{i}", "author_id": "a{i % 3}", "created_at": 0, "visibility": "public", '
                     f'"caption": "#tag{i % 4}", "media": ["{i}.jpg"]}}')
    (folder / "posts.jsonl").write_text("\n".join(lines))
    return folder / "posts.jsonl"


# ------------------------------------------------------------------------------- without Ray


def test_the_registry_and_the_config_refuse_what_they_do_not_know():
    assert ENGINES.names() == ["local", "ray"]
    with pytest.raises(KeyError, match="did you mean 'ray'"):
        EngineConfig(name="rya")
    with pytest.raises(ValueError, match="ray engine"):
        EngineConfig(name="local", address="auto")
    for bad in (-1, True, 1.5):
        with pytest.raises(ValueError):
            EngineConfig(workers=bad)
    with pytest.raises(ValueError):
        EngineConfig(name="ray", max_retries=-1)


def test_the_local_engine_runs_every_block_once_in_and_out_of_process():
    for workers in (1, 2):
        with create_engine(EngineConfig(workers=workers)) as engine:
            got = dict(engine.map(pow, ((i,) for i in range(7)), common=(3,)))
        assert got == {i: 3 ** i for i in range(7)}


def test_a_ray_address_without_the_ray_engine_is_refused(tmp_path, capsys):
    assert main(["ingest", str(tmp_path), "--out", str(tmp_path / "x"), "--format", "folder", "--ray-address", "auto"]) == 2
    assert "--ray-address: only with --engine ray" in capsys.readouterr().err


def test_the_local_pool_gives_the_same_bytes_whatever_the_workers(mixed_source, tmp_path):
    src, _ = mixed_source
    one = run(src, tmp_path / "one")
    two = run(src, tmp_path / "two", cfg=replace(CFG, workers=2))
    assert one.version == two.version and one.reconciles()
    assert dataset_bytes(tmp_path / "one") == dataset_bytes(tmp_path / "two")


_DRIVER = textwrap.dedent("""
    import os, signal, sys
    from tagsight.engines import LocalEngine, EngineConfig
    from tagsight.ingest.images import ImageConfig
    from tagsight.ingest.pipeline import IngestConfig, ingest
    from tagsight.ingest.sources import open_source

    class KilledAfter(LocalEngine):
        def map(self, fn, blocks, common=()):
            for n, done in enumerate(super().map(fn, blocks, common)):
                if n == int(sys.argv[3]):  # blocks 0..n are on disk: the driver dies here, SIGKILLed
                    os.kill(os.getpid(), signal.SIGKILL)
                yield done

    cfg = IngestConfig(samples_per_shard=3, workers=1, chunk_size=2, image=ImageConfig(max_side=32))
    ingest(open_source(sys.argv[1], "jsonl", name="t"), sys.argv[2], cfg=cfg, engine=KilledAfter(EngineConfig(workers=1)))
""")


class Counting(LocalEngine):
    """The local engine, counting the blocks it ran."""

    ran = 0

    def map(self, fn, blocks, common=()):
        for done in super().map(fn, blocks, common):
            self.ran += 1
            yield done


def test_a_driver_killed_after_some_blocks_resumes_from_them_to_the_same_version(tmp_path, make_picture):
    src = photo_posts(tmp_path / "src", make_picture, 12)  # 6 blocks of 2
    clean = run(src, tmp_path / "clean")
    script = tmp_path / "driver.py"
    script.write_text(_DRIVER)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run([sys.executable, str(script), str(src), str(tmp_path / "ds"), "2"], env=env,
                          capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert len(list((tmp_path / "ds" / ".work").glob("*.arrow"))) == 3 and not (tmp_path / "ds" / "manifest.json").exists()
    engine = Counting(EngineConfig(workers=1))
    resumed = run(src, tmp_path / "ds", engine=engine)
    assert engine.ran == 3  # only the blocks the killed driver had not finished
    assert resumed.version == clean.version and resumed.reconciles()
    assert resumed.posts_in == 12 == resumed.posts_kept + resumed.posts_rejected
    assert dataset_bytes(tmp_path / "ds") == dataset_bytes(tmp_path / "clean")


# ------------------------------------------------------------------------------- on Ray

ray = pytest.importorskip("ray", reason="the ray engine needs the ray extra: pip install 'tagsight[ray]'")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
    yield
    ray.shutdown()


def die_once(marker: str, fn, *args):
    """``fn(*args)``, but the first call of all (whichever worker claims ``marker``) SIGKILLs its own worker."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return fn(*args)
    os.kill(os.getpid(), signal.SIGKILL)


class DyingRay(RayEngine):
    """The Ray engine whose first task kills its worker process."""

    def __init__(self, marker: Path) -> None:
        super().__init__(EngineConfig(name="ray"))
        self.marker = str(marker)

    def map(self, fn, blocks, common=()):
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the test module is not on the workers' path
        return super().map(functools.partial(die_once, self.marker, fn), blocks, common)


@pytest.mark.ray
def test_a_cluster_that_cannot_be_joined_is_a_clear_refusal(tmp_path, capsys, monkeypatch, make_picture):
    if ray.is_initialized():
        pytest.skip("a Ray is already running in this process")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    src = photo_posts(tmp_path / "src", make_picture, 1)
    rc = main(["ingest", str(src), "--out", str(tmp_path / "ds"), "--engine", "ray", "--ray-address", "auto"])
    err = capsys.readouterr().err
    if rc == 0:
        pytest.skip("a `ray start` cluster runs on this machine: 'auto' joined it")
    assert rc == 2 and "cannot join the Ray cluster at auto" in err


@pytest.mark.ray
def test_ray_gives_the_same_bytes_as_the_local_pool_from_the_cli_too(local_ray, mixed_source, tmp_path, capsys):
    src, _ = mixed_source
    local = run(src, tmp_path / "local")
    with create_engine(EngineConfig(name="ray")) as engine:
        on_ray = run(src, tmp_path / "ray", engine=engine)
    assert on_ray.to_dict() | {"seconds": 0} == local.to_dict() | {"seconds": 0} and on_ray.reconciles()
    assert dataset_bytes(tmp_path / "ray") == dataset_bytes(tmp_path / "local")
    args = ["ingest", str(src), "--out", str(tmp_path / "cli"), "--source-name", "t", "--shard-size", "3",
            "--max-side", "32", "--engine", "ray"]
    assert main(args) == 0 and f"dataset version {local.version}" in capsys.readouterr().out
    assert ray.is_initialized()  # a Ray the caller started is left running


@pytest.mark.ray
def test_a_worker_killed_mid_block_has_its_block_retried_nothing_lost_or_twice(local_ray, tmp_path, make_picture):
    src = photo_posts(tmp_path / "src", make_picture, 10)
    clean = run(src, tmp_path / "clean")
    engine = DyingRay(tmp_path / "died")
    survived = run(src, tmp_path / "ds", engine=engine)
    assert (tmp_path / "died").exists()  # a worker did die
    assert survived.version == clean.version and survived.reconciles()
    assert (survived.media_in, survived.media_kept) == (clean.media_in, clean.media_kept)
    assert dataset_bytes(tmp_path / "ds") == dataset_bytes(tmp_path / "clean")


@pytest.mark.ray
def test_url_media_are_fetched_by_the_ray_workers_with_the_same_outcome(local_ray, tmp_path):
    from tagsight.ingest.fetch import FetchConfig
    from tests.ingest.webserver import Site

    paths = ["/img/1.jpg", "/noai/2.jpg", "/private/3.jpg", "/gone.jpg", "/img/4.jpg", "/redirect/5.jpg"]
    fetch = FetchConfig(timeout=2.0, retries=0, backoff=0.01, allow_private_addresses=True)
    cfg = replace(CFG, fetch=fetch)
    with Site(robots="User-agent: tagsight\nDisallow: /private/\n") as site:
        lst = tmp_path / "urls.txt"
        lst.write_text("\n".join(site.url(p) for p in paths))
        local = ingest(open_source(lst, "urls", name="u"), tmp_path / "local", cfg=cfg)
        asked = len(site.requests)
        with create_engine(EngineConfig(name="ray")) as engine:
            on_ray = ingest(open_source(lst, "urls", name="u"), tmp_path / "ray", cfg=cfg, engine=engine)
        assert len(site.requests) > asked  # the Ray workers fetched for themselves
    assert on_ray.version == local.version and on_ray.reconciles()
    assert on_ray.media_reasons == local.media_reasons and {"optout_x_robots_tag", "optout_robots_txt",
                                                            "fetch_failed:404"} <= set(on_ray.media_reasons)
    assert dataset_bytes(tmp_path / "ray") == dataset_bytes(tmp_path / "local")


def test_the_dataset_is_the_same_bytes_whatever_the_image_batches(mixed_source, tmp_path, monkeypatch):
    from tagsight.ingest import blocks, images

    src, _ = mixed_source
    cfg = replace(CFG, chunk_size=256)
    batched = run(src, tmp_path / "batched", cfg=cfg)
    monkeypatch.setattr(blocks, "BATCH_SIZE", 1)  # one image at a time, as before batches
    single = run(src, tmp_path / "single", cfg=cfg)
    monkeypatch.setattr(blocks, "BATCH_SIZE", 3)
    monkeypatch.setattr(blocks, "BATCH_BYTES", 1)  # every read ends its batch: bytes, not count, cut it
    monkeypatch.setattr(images, "BATCH_PIXELS", 1)
    by_bytes = run(src, tmp_path / "by-bytes", cfg=cfg)
    assert batched.version == single.version == by_bytes.version and batched.reconciles()
    assert dataset_bytes(tmp_path / "batched") == dataset_bytes(tmp_path / "single") == dataset_bytes(tmp_path / "by-bytes")
