"""`--shard I/N`: which sessions one processor owns (`wire.shard_of`, sha1 of the session id)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ShardSpec:
    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: need 0 ≤ I < N")

    @classmethod
    def parse(cls, text: str) -> ShardSpec:
        """`I/N`, e.g. `0/2` (shards are numbered from 0)."""
        index, sep, count = text.partition("/")
        try:
            if not sep:
                raise ValueError
            return cls(int(index), int(count))
        except ValueError:
            raise ValueError(
                f"--shard must be I/N with 0 ≤ I < N, e.g. 0/2; got {text!r}"
            ) from None

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def client_id(self, prefix: str) -> str:
        """The default MQTT client id of this shard's processor: stable across restarts (the
        broker keeps its persistent session), distinct per topic prefix and shard."""
        tag = hashlib.sha1(prefix.encode(), usedforsecurity=False).hexdigest()[:8]
        return f"imu-stream-process-{self.index}of{self.count}-{tag}"
