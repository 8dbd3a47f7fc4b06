"""Every forgettable artifact kind, assembled at the top: importing this module registers them all.

Each module below owns one kind of artifact and registers its ``find / affected / purge`` in
``tagsight.privacy.forget.FORGETTERS`` when imported; privacy itself names none of them. ``tagsight
forget`` (and any library caller of ``tagsight.privacy.forget.forget``) imports this module first.
To add a kind, register it in the module that owns the artifact and import that module here.
"""

from __future__ import annotations

import tagsight.apps.forget_index  # noqa: F401  (the similar-image index)
import tagsight.curate.forget  # noqa: F401  (curated sets and review queues)
import tagsight.eval.forget_features  # noqa: F401  (cached features)
import tagsight.eval.forget_reports  # noqa: F401  (decontamination reports naming pool posts)
import tagsight.generate.forget  # noqa: F401  (generator checkpoints)
import tagsight.ingest.forget  # noqa: F401  (datasets: tombstones, shards, catalog)
import tagsight.privacy.forget_derived  # noqa: F401  (models and artifacts made from the posts)
import tagsight.privacy.forget_tables  # noqa: F401  (Parquet tables keyed by post)
