"""Gait simulator: walking and running kinematics → IMU signals, with exact ground truth."""

from imu_stream.sim.config import SimulationConfig
from imu_stream.sim.session import SimulatedSession, simulate, write_simulated_session

__all__ = ["SimulatedSession", "SimulationConfig", "simulate", "write_simulated_session"]
