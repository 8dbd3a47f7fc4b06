"""The torchrun launcher as tests start it: ``--standalone``, so each run rendezvouses on a free port of its own with a
fresh id (a fixed ``--master_port`` shared by two runs at once, tests beside a benchmark or another checkout's tests,
let one run's ranks join the other's store)."""


def torchrun(nproc: int) -> list[str]:
    """The interpreter arguments that start ``-m MODULE`` under torchrun with ``nproc`` processes; none for 0."""
    return ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)] if nproc else []
