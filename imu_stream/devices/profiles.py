"""Firmware profiles: the TOML files in `firmware_profiles/` read into typed records.

The codecs take every UUID, register id, code table and scale from here, so a new firmware
variant is mostly a new TOML file. Reading files is the only I/O; it happens once per profile.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

DEVICE_NAMES: tuple[str, ...] = ("movesense", "metawear-bmi160", "metawear-bmi270")


class ProfileError(ValueError):
    """A missing or inconsistent firmware profile; the message is one line."""


@dataclass(frozen=True, slots=True)
class MovesenseProfile:
    device: str
    name_prefixes: tuple[str, ...]
    service_uuid: str
    write_uuid: str
    notify_uuid: str
    write_with_response: bool
    battery_service_uuid: str | None
    battery_level_uuid: str | None
    cmd_hello: int
    cmd_subscribe: int
    cmd_unsubscribe: int
    resp_command_result: int
    resp_data: int
    resp_data_part2: int
    header_bytes: int
    timestamp_bytes: int
    max_part_bytes: int
    max_subscriptions: int
    resources: dict[str, tuple[str, ...]]
    path_template: str
    rates_hz: tuple[int, ...]
    samples_per_notification: dict[int, int]
    acc_scale: float
    gyro_scale: float
    mag_scale: float
    default_resource: str
    default_rate_hz: int

    @property
    def family(self) -> str:
        return "movesense"

    def resource_path(self, resource: str, rate_hz: int) -> str:
        if resource not in self.resources:
            raise ProfileError(f"unknown Movesense resource {resource!r}")
        if rate_hz not in self.rates_hz:
            raise ProfileError(f"Movesense rate {rate_hz} Hz not in {list(self.rates_hz)}")
        return self.path_template.format(resource=resource, rate=rate_hz)

    def parse_resource_path(self, path: str) -> tuple[str, int] | None:
        """`/Meas/IMU6/208` → ("IMU6", 208); None for anything this profile cannot stream."""
        parts = path.strip().split("/")
        if len(parts) != 4 or parts[0] != "" or parts[1] != "Meas":
            return None
        resource, rate_text = parts[2], parts[3]
        if resource not in self.resources or not rate_text.isdigit():
            return None
        rate = int(rate_text)
        return (resource, rate) if rate in self.rates_hz else None


@dataclass(frozen=True, slots=True)
class BoschAccTable:
    implementation: int
    power_mode: int
    data_interrupt_enable: int
    data_config: int
    data: int
    packed_data: int
    odr_hz: tuple[float, ...]
    low_odr_hz: float
    bandwidth: int
    bandwidth_below_low_odr: int
    bit7: int
    bit7_below_low_odr: int
    start_power_mode: int
    start_power_mode_low_odr: int
    range_codes: dict[int, int]
    lsb_per_g: dict[int, float]
    default_range_g: int


@dataclass(frozen=True, slots=True)
class BoschGyroTable:
    implementation: int
    power_mode: int
    data_interrupt_enable: int
    config: int
    data: int
    packed_data: int
    odr_codes: dict[int, int]
    bandwidth: int
    range_codes: dict[int, int]
    lsb_per_dps: dict[int, float]
    default_range_dps: int


@dataclass(frozen=True, slots=True)
class FusionTable:
    enable: int
    mode: int
    output_enable: int
    corrected_acc: int
    corrected_gyro: int
    corrected_mag: int
    quaternion: int
    euler: int
    gravity: int
    linear_acc: int
    corrected_acc_scale: float


@dataclass(frozen=True, slots=True)
class DataProcessorTable:
    """The firmware's data-processing module: what the accounter (tick prefix) needs."""

    module: int
    add: int
    notify: int
    remove: int
    notify_enable: int
    remove_all: int
    no_source_id: int
    max_processors: int
    packer: int
    accounter: int
    accounter_time_mode: int
    accounter_count_mode: int
    accounter_length: int
    accounter_prescale: int
    tick_s: float


@dataclass(frozen=True, slots=True)
class MetaWearProfile:
    device: str
    variant: str
    name_prefixes: tuple[str, ...]
    service_uuid: str
    command_uuid: str
    notify_uuid: str
    write_with_response: bool
    max_notification_bytes: int
    module_acc: int
    module_settings: int
    module_gyro: int
    module_fusion: int
    module_debug: int
    read_flag: int
    acc: BoschAccTable
    gyro: BoschGyroTable
    fusion: FusionTable
    data_processor: DataProcessorTable
    settings_connection_params: int
    settings_battery_state: int
    debug_disconnect: int
    default_rate_hz: float
    default_acc_range_g: int
    default_gyro_range_dps: int
    default_packed: bool

    @property
    def family(self) -> str:
        return "metawear"


Profile = MovesenseProfile | MetaWearProfile


def profiles_dir() -> Path:
    """The folder of firmware TOMLs: the repo's `firmware_profiles/` or the installed copy."""
    repo_dir = Path(__file__).resolve().parents[2] / "firmware_profiles"
    if repo_dir.is_dir():
        return repo_dir
    installed = Path(str(resources.files("imu_stream") / "_firmware_profiles"))
    if installed.is_dir():
        return installed
    raise ProfileError("firmware_profiles folder not found (neither in the checkout nor installed)")


def _int_keys(table: dict[str, Any], what: str) -> dict[int, Any]:
    try:
        return {int(k): v for k, v in table.items()}
    except ValueError as exc:
        raise ProfileError(f"{what}: keys must be integers ({exc})") from exc


def _movesense(data: dict[str, Any]) -> MovesenseProfile:
    gatt, cmds, resp = data["gatt"], data["commands"], data["responses"]
    packet, rates = data["packet"], data["rates"]
    return MovesenseProfile(
        device=data["device"],
        name_prefixes=tuple(data["name_prefixes"]),
        service_uuid=gatt["service"],
        write_uuid=gatt["write"],
        notify_uuid=gatt["notify"],
        write_with_response=bool(gatt["write_with_response"]),
        battery_service_uuid=gatt.get("battery_service"),
        battery_level_uuid=gatt.get("battery_level"),
        cmd_hello=int(cmds["hello"]),
        cmd_subscribe=int(cmds["subscribe"]),
        cmd_unsubscribe=int(cmds["unsubscribe"]),
        resp_command_result=int(resp["command_result"]),
        resp_data=int(resp["data"]),
        resp_data_part2=int(resp["data_part2"]),
        header_bytes=int(packet["header_bytes"]),
        timestamp_bytes=int(packet["timestamp_bytes"]),
        max_part_bytes=int(packet["max_part_bytes"]),
        max_subscriptions=int(packet["max_subscriptions"]),
        resources={k: tuple(v) for k, v in data["resources"].items()},
        path_template=data["resource_paths"]["template"],
        rates_hz=tuple(int(r) for r in rates["hz"]),
        samples_per_notification=_int_keys(
            rates["samples_per_notification"], "samples_per_notification"
        ),
        acc_scale=float(data["units"]["acc_scale"]),
        gyro_scale=float(data["units"]["gyro_scale"]),
        mag_scale=float(data["units"]["mag_scale"]),
        default_resource=data["defaults"]["resource"],
        default_rate_hz=int(data["defaults"]["rate_hz"]),
    )


def _metawear(data: dict[str, Any]) -> MetaWearProfile:
    gatt, mods, acc, gyro = data["gatt"], data["modules"], data["accelerometer"], data["gyro"]
    fusion, defaults = data["sensor_fusion"], data["defaults"]
    acc_table = BoschAccTable(
        implementation=int(acc["implementation"]),
        power_mode=int(acc["power_mode"]),
        data_interrupt_enable=int(acc["data_interrupt_enable"]),
        data_config=int(acc["data_config"]),
        data=int(acc["data"]),
        packed_data=int(acc["packed_data"]),
        odr_hz=tuple(float(x) for x in acc["odr_hz"]),
        low_odr_hz=float(acc["low_odr_hz"]),
        bandwidth=int(acc["bandwidth"]),
        bandwidth_below_low_odr=int(acc["bandwidth_below_low_odr"]),
        bit7=int(acc["bit7"]),
        bit7_below_low_odr=int(acc["bit7_below_low_odr"]),
        start_power_mode=int(acc["start_power_mode"]),
        start_power_mode_low_odr=int(acc["start_power_mode_low_odr"]),
        range_codes=_int_keys(acc["range_codes"], "accelerometer.range_codes"),
        lsb_per_g={k: float(v) for k, v in _int_keys(acc["lsb_per_g"], "lsb_per_g").items()},
        default_range_g=int(acc["default_range_g"]),
    )
    gyro_table = BoschGyroTable(
        implementation=int(gyro["implementation"]),
        power_mode=int(gyro["power_mode"]),
        data_interrupt_enable=int(gyro["data_interrupt_enable"]),
        config=int(gyro["config"]),
        data=int(gyro["data"]),
        packed_data=int(gyro["packed_data"]),
        odr_codes=_int_keys(gyro["odr_codes"], "gyro.odr_codes"),
        bandwidth=int(gyro["bandwidth"]),
        range_codes=_int_keys(gyro["range_codes"], "gyro.range_codes"),
        lsb_per_dps={k: float(v) for k, v in _int_keys(gyro["lsb_per_dps"], "lsb_per_dps").items()},
        default_range_dps=int(gyro["default_range_dps"]),
    )
    fusion_table = FusionTable(
        **{k: int(v) for k, v in fusion.items() if k != "corrected_acc_scale"},
        corrected_acc_scale=float(fusion["corrected_acc_scale"]),
    )
    dp = data["data_processor"]
    dp_table = DataProcessorTable(
        **{k: int(v) for k, v in dp.items() if k != "tick_s"}, tick_s=float(dp["tick_s"])
    )
    device = data["device"]
    return MetaWearProfile(
        device=device,
        variant=device.split("-", 1)[1],
        name_prefixes=tuple(data["name_prefixes"]),
        service_uuid=gatt["service"],
        command_uuid=gatt["command"],
        notify_uuid=gatt["notify"],
        write_with_response=bool(gatt["write_with_response"]),
        max_notification_bytes=int(gatt["max_notification_bytes"]),
        module_acc=int(mods["accelerometer"]),
        module_settings=int(mods["settings"]),
        module_gyro=int(mods["gyro"]),
        module_fusion=int(mods["sensor_fusion"]),
        module_debug=int(mods["debug"]),
        read_flag=int(mods["read_flag"]),
        acc=acc_table,
        gyro=gyro_table,
        fusion=fusion_table,
        data_processor=dp_table,
        settings_connection_params=int(data["settings"]["connection_params"]),
        settings_battery_state=int(data["settings"]["battery_state"]),
        debug_disconnect=int(data["debug"]["disconnect"]),
        default_rate_hz=float(defaults["rate_hz"]),
        default_acc_range_g=int(defaults["acc_range_g"]),
        default_gyro_range_dps=int(defaults["gyro_range_dps"]),
        default_packed=bool(defaults["packed"]),
    )


def parse_profile(data: dict[str, Any], source: str = "<profile>") -> Profile:
    """Build a profile from parsed TOML; ProfileError names the missing key."""
    try:
        family = data["family"]
        if family == "movesense":
            return _movesense(data)
        if family == "metawear":
            return _metawear(data)
    except KeyError as exc:
        raise ProfileError(f"{source}: missing key {exc}") from exc
    raise ProfileError(f"{source}: unknown family {data.get('family')!r}")


@cache
def all_profiles() -> dict[str, Profile]:
    """Every profile in the profiles folder, by device name (`movesense`, `metawear-bmi160`, …)."""
    out: dict[str, Profile] = {}
    for path in sorted(profiles_dir().glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ProfileError(f"{path.name}: not valid TOML ({exc})") from exc
        profile = parse_profile(data, path.name)
        out[profile.device] = profile
    return out


def load_profile(device: str) -> Profile:
    """The profile of DEVICE; `metawear` alone means the BMI160 board (shared registers)."""
    name = "metawear-bmi160" if device == "metawear" else device
    profiles = all_profiles()
    if name not in profiles:
        known = ", ".join(sorted(profiles))
        raise ProfileError(f"unknown device {device!r} (known: {known})")
    return profiles[name]


def movesense_profile(device: str = "movesense") -> MovesenseProfile:
    profile = load_profile(device)
    if not isinstance(profile, MovesenseProfile):
        raise ProfileError(f"{device!r} is not a Movesense profile")
    return profile


def metawear_profile(device: str = "metawear-bmi160") -> MetaWearProfile:
    profile = load_profile(device)
    if not isinstance(profile, MetaWearProfile):
        raise ProfileError(f"{device!r} is not a MetaWear profile")
    return profile
