"""``ServeSettings``: the one source of the server's limits and batching defaults, validated at construction."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"ServeSettings.{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class ServeSettings:
    """Limits and batching of one server.

    ``max_bytes`` bounds the image file (the request body may be up to 4/3 of it plus
    ``body_overhead`` for base64 and multipart framing); ``max_pixels`` is checked from the image
    header before any pixel is decoded; decoded images larger than ``max_side`` are scaled down
    (JPEGs decoded at reduced DCT scale) before the app sees them. ``max_batch`` 1 turns batching off.
    ``max_queue`` requests may wait per app; one more gets 429 ``overloaded``.
    """

    max_batch: int = 32
    max_wait_ms: float = 5.0
    max_queue: int = 1024
    max_bytes: int = 10 * 2**20
    max_pixels: int = 25_000_000
    max_side: int = 1024
    body_overhead: int = 64 * 1024
    admin_token: str | None = None
    request_timeout_s: float = 60.0
    decode_threads: int = 4

    def __post_init__(self) -> None:
        for name in ("max_batch", "max_queue", "max_bytes", "max_pixels", "max_side", "body_overhead",
                     "decode_threads"):
            _positive_int(name, getattr(self, name))
        if not 0 <= self.max_wait_ms <= 10_000:
            raise ValueError(f"ServeSettings.max_wait_ms must be in [0, 10000], got {self.max_wait_ms!r}")
        if not self.request_timeout_s > 0:
            raise ValueError(f"ServeSettings.request_timeout_s must be > 0, got {self.request_timeout_s!r}")
        bomb = Image.MAX_IMAGE_PIXELS
        if bomb is not None and self.max_pixels > bomb:
            raise ValueError(f"ServeSettings.max_pixels ({self.max_pixels}) exceeds Pillow's decompression-bomb "
                             f"guard ({bomb}); lower it or raise PIL.Image.MAX_IMAGE_PIXELS")
        if self.admin_token is not None and len(self.admin_token.strip()) < 16:
            raise ValueError("ServeSettings.admin_token must have at least 16 characters")

    @property
    def max_body(self) -> int:
        """The largest request body read: a base64 image of ``max_bytes`` plus framing."""
        return self.max_bytes * 4 // 3 + 4 + self.body_overhead
