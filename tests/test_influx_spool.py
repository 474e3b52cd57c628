"""The store-and-forward queue: order, disk spill, bound, resume after a restart."""

from __future__ import annotations

from pathlib import Path

from imu_stream.sinks.spool import Batch, BatchSpool


def _batch(i: int, size: int = 100) -> Batch:
    return Batch(payload=f"{i:08d}".encode() * (size // 8), n_lines=i + 1, compressed=False)


def _drain(spool: BatchSpool) -> list[bytes]:
    out = []
    while (head := spool.peek()) is not None:
        out.append(head.payload)
        spool.pop(head.seq)
    return out


def test_fifo_order_across_memory_and_disk(tmp_path: Path) -> None:
    spool = BatchSpool(tmp_path, memory_batches=3)
    batches = [_batch(i) for i in range(10)]
    for b in batches:
        spool.push(b)
    assert spool.disk_batches == 7
    assert len(list(tmp_path.iterdir())) == 7
    assert spool.n_lines == sum(b.n_lines for b in batches)
    # Pop a few, push more: the newcomers must still come after everything on disk.
    head = spool.peek()
    assert head is not None
    spool.pop(head.seq)
    spool.push(_batch(10))
    assert _drain(spool) == [b.payload for b in batches[1:]] + [_batch(10).payload]
    assert spool.disk_batches == 0 and not list(tmp_path.iterdir())


def test_pop_with_a_stale_sequence_number_removes_nothing(tmp_path: Path) -> None:
    spool = BatchSpool(tmp_path, memory_batches=1)
    first = spool.push(_batch(0))
    spool.push(_batch(1))
    spool.pop(first.seq + 1)
    assert len(spool) == 2


def test_disk_bound_drops_the_oldest(tmp_path: Path) -> None:
    spool = BatchSpool(tmp_path, max_bytes=450, memory_batches=0)
    for i in range(10):
        spool.push(_batch(i))  # 96 bytes each → 4 fit
    assert spool.disk_bytes <= 450
    kept = _drain(spool)
    assert kept == [_batch(i).payload for i in range(6, 10)]
    assert spool.dropped_batches == 6
    assert spool.dropped_lines == sum(i + 1 for i in range(6))


def test_memory_only_spool_is_bounded(tmp_path: Path) -> None:
    spool = BatchSpool(None, max_bytes=300, memory_batches=2)
    for i in range(8):
        spool.push(_batch(i))
    kept = _drain(spool)
    assert kept == [_batch(i).payload for i in range(5, 8)]
    assert spool.dropped_batches == 5


def test_persist_and_resume_in_a_new_spool(tmp_path: Path) -> None:
    spool = BatchSpool(tmp_path, memory_batches=2)
    for i in range(5):
        spool.push(_batch(i))
    (tmp_path / "0000000000000099-3.lp.tmp").write_bytes(b"half-written")
    assert spool.persist() == 2
    resumed = BatchSpool(tmp_path, memory_batches=2)
    assert not list(tmp_path.glob("*.tmp"))
    later = resumed.push(_batch(5))
    assert later.seq == 5
    assert _drain(resumed) == [_batch(i).payload for i in range(6)]
    assert [b for b in (resumed.peek(),) if b is not None] == []
