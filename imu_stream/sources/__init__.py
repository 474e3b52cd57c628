"""Sample sources: BLE devices, the device emulator, the simulator, replay, the MQTT bus."""
