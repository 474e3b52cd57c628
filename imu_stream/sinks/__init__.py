"""Sinks: the session journal, export, report, and the InfluxDB/MQTT writers."""
