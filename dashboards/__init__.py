"""Grafana dashboards of imu-stream, generated from Python (grafana-foundation-sdk).

`python -m dashboards.generate` writes `dashboards/json/`; `dashboards/provisioning/` makes
Grafana load them and the InfluxDB data source they query.
"""
