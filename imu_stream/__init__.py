"""imu-stream: live pelvic-stability measures from wearable IMUs."""

__version__ = "0.1.0"
