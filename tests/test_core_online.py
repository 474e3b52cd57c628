"""The live path (packets pushed as they come) and the batch path (`analyze`) give the same
results: the core decides everything on fixed blocks of the sample grid."""

from __future__ import annotations

import numpy as np
import pytest

from imu_stream.analyze import analyze_session
from imu_stream.core.online import CoreUpdate, OnlineProcessor, merge_updates
from imu_stream.records import STRIDE_COLUMNS
from imu_stream.sim import SimulationConfig, simulate


def live_update(sim_recordings: dict, rate_hz: float, seed: int) -> tuple[CoreUpdate, list[str]]:
    """Push each sensor in random packet sizes, interleaved, updating after every push."""
    rng = np.random.default_rng(seed)
    processor = OnlineProcessor(list(sim_recordings), rate_hz)
    cursor = dict.fromkeys(sim_recordings, 0)
    updates: list[CoreUpdate] = []
    messages: list[str] = []
    while any(cursor[loc] < rec.time_s.size for loc, rec in sim_recordings.items()):
        loc = rng.choice([k for k, r in sim_recordings.items() if cursor[k] < r.time_s.size])
        rec = sim_recordings[loc]
        a = cursor[loc]
        b = min(rec.time_s.size, a + int(rng.integers(1, 40)))
        processor.push(loc, rec.time_s[a:b], rec.acc[a:b], rec.gyr[a:b])
        cursor[loc] = b
        update = processor.update()
        messages.append(update.calibration.message)
        updates.append(update)
    updates.append(processor.finish())
    return merge_updates(updates), messages


@pytest.mark.parametrize(
    ("activity", "sensors"),
    [("run", ("sacrum", "left_thigh", "right_thigh")), ("walk", ("sacrum",))],
)
def test_live_equals_batch(activity: str, sensors: tuple[str, ...]) -> None:
    sim = simulate(
        SimulationConfig(activity=activity, duration_s=30.0, rate_hz=100.0, seed=3, sensors=sensors)
    )
    batch = analyze_session(sim.recordings, sim.info)
    live, messages = live_update(sim.recordings, sim.info.sample_rate_hz, seed=1)
    assert len(batch.strides) > 20
    assert len(live.strides) == len(batch.strides)
    for a, b in zip(live.strides, batch.strides, strict=True):
        for column in STRIDE_COLUMNS:
            x, y = getattr(a, column), getattr(b, column)
            if isinstance(x, float):
                assert x == pytest.approx(y, abs=1e-9, nan_ok=True), column
            else:
                assert x == y, column
    assert [(e.time_s, e.side, e.event) for e in live.events] == [
        (e.time_s, e.side, e.event) for e in batch.events
    ]
    for name, values in batch.angles.columns.items():
        np.testing.assert_allclose(live.angles.columns[name], values, atol=1e-9)
    # The athlete is told what to do before calibration completes.
    assert any(m.startswith(("stand still", "standing still", "calibrating")) for m in messages)
    assert messages[-1].startswith("calibrated")


def test_live_strides_arrive_within_a_second_of_their_end() -> None:
    """Each stride is final at most DECISION_DELAY + one block after its last contact."""
    sim = simulate(SimulationConfig(activity="run", duration_s=40.0, rate_hz=100.0, seed=5))
    processor = OnlineProcessor(list(sim.recordings), 100.0)
    delays: list[float] = []
    n = sim.recordings["sacrum"].time_s.size
    for a in range(0, n, 10):  # 0.1 s packets
        for loc, rec in sim.recordings.items():
            processor.push(loc, rec.time_s[a : a + 10], rec.acc[a : a + 10], rec.gyr[a : a + 10])
        now = float(sim.recordings["sacrum"].time_s[min(n, a + 10) - 1])
        delays += [now - s.end_s for s in processor.update().strides]
    steady = np.array(delays[40:])  # after the calibration burst
    assert steady.size > 50
    assert steady.max() <= 1.35, steady.max()


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="sacrum"):
        OnlineProcessor(["left_thigh"], 100.0)
    processor = OnlineProcessor(["sacrum"], 100.0)
    t = np.arange(10) / 100.0
    processor.push("sacrum", t, np.zeros((10, 3)), np.zeros((10, 3)))
    with pytest.raises(ValueError, match="does not increase"):
        processor.push("sacrum", t, np.zeros((10, 3)), np.zeros((10, 3)))
    with pytest.raises(KeyError):
        processor.push("left_thigh", t, np.zeros((10, 3)), np.zeros((10, 3)))
