"""Atomic writes: several writers of one path at once (torchrun ranks filling one local cache, threads) each
replace it with a whole file of theirs; none fails and no reader sees half a file."""

import multiprocessing
import threading

from tagsight.fsio import atomic_write_bytes, private_temp

WRITES = 150


def _write_many(path: str, tag: bytes, errors: list) -> None:
    try:
        for i in range(WRITES):
            atomic_write_bytes(path, tag * (1000 + i))
    except OSError as exc:             # the shared temporary name: "No such file or directory" on the rename
        errors.append(repr(exc))


def _process(path: str, tag: bytes) -> None:
    errors: list = []
    _write_many(path, tag, errors)
    if errors:
        raise SystemExit(errors[0])


def test_threads_writing_one_path_at_once_all_succeed_and_leave_one_whole_file(tmp_path):
    path, errors = tmp_path / "index.parquet", []
    threads = [threading.Thread(target=_write_many, args=(str(path), bytes([65 + k]), errors)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    data = path.read_bytes()
    assert len(set(data)) == 1 and len(data) >= 1000            # one writer's whole file
    assert [p.name for p in tmp_path.iterdir()] == ["index.parquet"]      # no temporary file left behind


def test_processes_writing_one_path_at_once_all_succeed(tmp_path):
    path = tmp_path / "cache" / "index.parquet"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_process, args=(str(path), bytes([97 + k]))) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert len(set(path.read_bytes())) == 1


def test_private_temp_is_hidden_beside_its_path_and_differs_between_threads(tmp_path):
    path = tmp_path / "block.bin"
    names: list = []
    both_alive = threading.Barrier(2)      # thread ids are reused once a thread ends; writers at once differ

    def name() -> None:
        names.append(private_temp(path))
        both_alive.wait()

    threads = [threading.Thread(target=name) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(names)) == 2 and names[0] != private_temp(path)
    assert all(n.parent == tmp_path and n.name.startswith(".block.bin.") and n.name.endswith(".tmp") for n in names)
