"""The live session: sources → journal → online processor → sinks, and the terminal view.

`imu_stream.pipeline.Pipeline` wires the parts; this package holds them:

- `records`: what flows between the stages (stamped sample blocks, processor updates);
- `sources`: BLE sensors (the collector), the simulator behind the device emulator, replay;
- `pairing`: per-sensor accelerometer/gyroscope pairing, identical to the journal reader's;
- `processor`: the processor stage around `core.online.OnlineProcessor`;
- `core_worker`: the process's preparation (the core warmed up, the GC frozen) and the worker
  thread for a session's final step;
- `sinks`: the `Sink` protocol and the journal, InfluxDB, MQTT and latency sinks;
- `state`, `thresholds`, `view`: the live terminal view (rich), rendered from snapshots;
- `command`: the `imu-stream run` and `demo` commands.
"""
