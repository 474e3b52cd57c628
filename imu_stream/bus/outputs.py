"""Where a shard processor's results go, per session: the MQTT bus and InfluxDB.

The processor shares one MQTT publisher and one InfluxDB writer among all its sessions; this
class holds one session's topic names and InfluxDB tags. Nothing here waits: the publisher
queues (QoS 1 for strides and events, kept until acknowledged; QoS 0 angles), the writer
batches and spools.

What goes where (the same as `run`, split between collector and processor):

| result | MQTT (this processor) | InfluxDB |
|---|---|---|
| strides, gait events | `stride`, `event` (QoS 1) | `stride` |
| angles (≤ 50 Hz) | `angles` (QoS 0) | `angles` |
| `calibrated`, `processed` session events | `event` (QoS 1) | `session_event` |
| collector's sensor status | — (the collector published it, retained) | `sensor` |
| collector's `start`, `gap`, `stop` events | — (the collector published them) | `session_event` |
"""

from __future__ import annotations

from imu_stream.bus.markers import SessionProcessed, encode_processed
from imu_stream.core.online import CoreUpdate
from imu_stream.sinks.influx import InfluxWriter
from imu_stream.sinks.influx_schema import AngleDownsampler, SeriesTags
from imu_stream.sinks.journal.meta import SessionEvent, SessionMeta, StatusRecord
from imu_stream.sinks.mqtt import QOS_RELIABLE, MqttPublisher


class SessionOutputs:
    def __init__(
        self, meta: SessionMeta, publisher: MqttPublisher, writer: InfluxWriter | None
    ) -> None:
        self.athlete = meta.athlete
        self.session = meta.session_id
        self.tags = SeriesTags.from_meta(meta)
        self.publisher = publisher
        self.writer = writer
        self._angles = AngleDownsampler()  # ≤ 50 Hz across chunks, for the bus and InfluxDB

    def on_update(self, core: CoreUpdate) -> None:
        pub, writer = self.publisher, self.writer
        if core.strides:
            pub.publish_strides(self.athlete, self.session, core.strides)
            if writer is not None:
                writer.write_strides(core.strides, self.tags)
        if core.events:
            pub.publish_gait_events(self.athlete, self.session, core.events)
        angles = self._angles(core.angles)
        if angles.time_s.size:
            pub.publish_angles(self.athlete, self.session, angles)
            if writer is not None:
                writer.write_angles(angles, self.tags)

    def processor_event(self, event: SessionEvent) -> None:
        """An event this processor found (e.g. `calibrated`): to the bus and InfluxDB."""
        self.publisher.publish_session_event(self.athlete, self.session, event)
        self._influx_event(event)

    def collector_event(self, event: SessionEvent) -> None:
        """An event the collector published already: InfluxDB only."""
        self._influx_event(event)

    def _influx_event(self, event: SessionEvent) -> None:
        if self.writer is not None:
            self.writer.write_session_events([event], self.tags)

    def status(self, record: StatusRecord) -> None:
        if self.writer is not None:
            self.writer.write_status([record], self.tags)

    def processed(self, done: SessionProcessed) -> None:
        topic = self.publisher.topics.topic(self.athlete, self.session, "event")
        payload = encode_processed(done)
        self.publisher.publish(topic, payload, QOS_RELIABLE)
        detail = f"{done.strides} strides, {done.raw_blocks_lost} raw blocks lost"
        self._influx_event(SessionEvent(done.time_s, "processed", detail))
