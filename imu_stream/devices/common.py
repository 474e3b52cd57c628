"""What every codec shares: counters of packets that could not be used."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(slots=True)
class DecodeStats:
    """Counts of notifications by outcome; a bad packet is counted and skipped, never raised."""

    packets: int = 0  # notifications fed to the decoder
    decoded: int = 0  # notifications (or reassembled messages) that produced samples or a reply
    samples: int = 0  # samples produced
    malformed: int = 0  # right header, inconsistent length or non-finite values
    truncated: int = 0  # shorter than its header/fixed layout requires
    unknown: int = 0  # packet type, register or subscription reference not known
    orphans: int = 0  # a multi-part piece without its partner (dropped)

    @property
    def rejected(self) -> int:
        return self.malformed + self.truncated + self.unknown + self.orphans

    def as_dict(self) -> dict[str, int]:
        return {f.name: int(getattr(self, f.name)) for f in fields(self)}
