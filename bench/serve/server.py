"""The benchmark's server process: ``create_app`` over the stand-in (or a bundle's apps) under uvicorn.

    python bench/serve/server.py --port 8123 --max-batch 32 --max-wait-ms 5 [--bundle DIR | --multi-app N]
        [--torch-threads 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--bundle", type=Path, default=None, help="serve the bundle's real apps instead of the stand-in")
    p.add_argument("--multi-app", type=int, default=0,
                   help="serve N stand-in apps sharing one backbone (bench_app.stand_in_apps) instead of one")
    p.add_argument("--torch-threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = p.parse_args()
    import torch
    import uvicorn

    from tagsight.serve.app import create_app
    from tagsight.serve.settings import ServeSettings

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    if args.bundle is not None:
        from tagsight.serve.loader import load_bundle_apps

        apps = load_bundle_apps(args.bundle, "cpu")
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_app import ResNetHashtagsStandIn, stand_in_apps

        apps = stand_in_apps(args.multi_app) if args.multi_app else {"hashtags": ResNetHashtagsStandIn()}
    settings = ServeSettings(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms)
    uvicorn.run(create_app(apps, settings), host="127.0.0.1", port=args.port, log_level="warning",
                access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
