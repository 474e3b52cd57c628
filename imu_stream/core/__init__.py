"""The signal core: pure functions on numpy arrays (no I/O, no asyncio)."""
