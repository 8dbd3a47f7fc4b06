"""What an ingest run did, with counts that reconcile (in = kept + rejected); also used by forget."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class IngestSummary:
    """What happened, with counts that reconcile: in = kept + rejected, for posts and for media."""

    version: str
    posts_in: int = 0
    posts_kept: int = 0
    post_reasons: Counter[str] = field(default_factory=Counter)
    media_in: int = 0
    media_kept: int = 0
    media_reasons: Counter[str] = field(default_factory=Counter)
    gps_removed: int = 0
    metadata_removed: int = 0
    faces_blurred: int = 0
    shards: int = 0
    seconds: float = 0.0

    @property
    def posts_rejected(self) -> int:
        return sum(self.post_reasons.values())

    @property
    def media_rejected(self) -> int:
        return sum(self.media_reasons.values())

    def reconciles(self) -> bool:
        return (self.posts_in == self.posts_kept + self.posts_rejected
                and self.media_in == self.media_kept + self.media_rejected)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(post_reasons=dict(sorted(self.post_reasons.items())),
                 media_reasons=dict(sorted(self.media_reasons.items())),
                 posts_rejected=self.posts_rejected, media_rejected=self.media_rejected)
        return d

    def format(self) -> str:
        lines = [f"posts: {self.posts_in} in = {self.posts_kept} kept + {self.posts_rejected} rejected"]
        lines += [f"  rejected {n:>6}  {reason}" for reason, n in self.post_reasons.most_common()]
        lines.append(f"media of eligible posts: {self.media_in} in = {self.media_kept} kept + {self.media_rejected} rejected")
        lines += [f"  rejected {n:>6}  {reason}" for reason, n in self.media_reasons.most_common()]
        lines.append(f"metadata stripped from {self.metadata_removed} images ({self.gps_removed} carried GPS); "
                     f"faces blurred: {self.faces_blurred}")
        lines.append(f"{self.shards} shard(s); dataset version {self.version}; {self.seconds:.1f}s")
        return "\n".join(lines)



def summarise(decisions: list[dict[str, Any]], media: list[dict[str, Any]], n_shards: int) -> IngestSummary:
    """The summary of a dataset from its decision rows (one per post) and media rows (one per media item)."""
    kept_media = [m for m in media if m["status"] == "ok"]
    return IngestSummary(
        version="", posts_in=len(decisions), posts_kept=sum(d["status"] == "kept" for d in decisions),
        post_reasons=Counter(d["reason"] for d in decisions if d["status"] == "rejected"),
        media_in=len(media), media_kept=len(kept_media),
        media_reasons=Counter(m["reason"] for m in media if m["status"] != "ok"),
        gps_removed=sum(bool(m["had_gps"]) for m in kept_media),
        metadata_removed=sum(bool(m["had_metadata"]) for m in kept_media),
        faces_blurred=sum(m["faces_blurred"] or 0 for m in kept_media), shards=n_shards)
