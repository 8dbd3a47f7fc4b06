"""Joining torchrun's process group: with one process too, so DDP and the collective backend run as on many."""

import socket

import torch.distributed as dist

from tagsight.train.distributed import DistEnv, init_distributed, shutdown


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_single_process_under_torchrun_joins_the_group(monkeypatch):
    for key, value in {"TORCHELASTIC_RUN_ID": "t", "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1",
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}.items():
        monkeypatch.setenv(key, value)
    env = init_distributed("cpu")
    try:
        assert env.group and dist.is_initialized() and dist.get_backend() == "gloo"
        assert env.world_size == 1 and not env.distributed
    finally:
        shutdown(env)
    assert not dist.is_initialized()


def test_a_plain_process_joins_nothing(monkeypatch):
    for key in ("TORCHELASTIC_RUN_ID", "WORLD_SIZE", "RANK"):
        monkeypatch.delenv(key, raising=False)
    env = init_distributed("cpu")
    assert env == DistEnv() and not dist.is_initialized()
