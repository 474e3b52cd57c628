"""Scale-out over the MQTT bus (DESIGN.md §1, §6): `imu-stream collect` puts sessions on the
bus (`collect.py`), `imu-stream process --shard I/N` processes the sessions of one shard
(`process.py`, one `session_worker.SessionWorker` per session). `run` does both in one process.
"""
