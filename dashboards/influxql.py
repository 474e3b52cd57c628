"""A raw InfluxQL query for Grafana's InfluxDB data source, as a grafana-foundation-sdk variant.

The SDK (Grafana 10.1 types) ships no InfluxDB query type, so this module adds the small part the
dashboards need: a raw InfluxQL target (``rawQuery: true``) with its result format and alias, a
fluent builder for it, and the registration that lets the SDK decode such targets again
(``Dashboard.from_json``), which the tests use to check the committed JSON.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

PLUGIN_ID = "influxdb"
# Fixed uid: the provisioning YAML creates the data source under it and every target points at it.
DATASOURCE_UID = "imu-stream-influxdb"
DATASOURCE = DataSourceRef(type_val=PLUGIN_ID, uid=DATASOURCE_UID)

ResultFormat = Literal["time_series", "table", "logs"]


class InfluxQLQuery(cogvariants.Dataquery):
    """One raw InfluxQL target of a panel (the JSON Grafana's InfluxDB plugin stores)."""

    ref_id: str | None
    query: str
    result_format: ResultFormat
    alias: str | None
    hide: bool | None
    datasource: DataSourceRef | None

    def __init__(
        self,
        query: str = "",
        ref_id: str | None = None,
        result_format: ResultFormat = "time_series",
        alias: str | None = None,
        hide: bool | None = None,
        datasource: DataSourceRef | None = None,
    ) -> None:
        self.query = query
        self.ref_id = ref_id
        self.result_format = result_format
        self.alias = alias
        self.hide = hide
        self.datasource = datasource

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "query": self.query,
            "rawQuery": True,  # raw InfluxQL, never the visual editor's model
            "resultFormat": self.result_format,
        }
        if self.ref_id is not None:
            payload["refId"] = self.ref_id
        if self.alias is not None:
            payload["alias"] = self.alias
        if self.hide is not None:
            payload["hide"] = self.hide
        if self.datasource is not None:
            payload["datasource"] = self.datasource
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        datasource = data.get("datasource")
        return cls(
            query=str(data.get("query", "")),
            ref_id=data.get("refId"),
            result_format=data.get("resultFormat", "time_series"),
            alias=data.get("alias"),
            hide=data.get("hide"),
            datasource=DataSourceRef.from_json(datasource) if datasource is not None else None,
        )


def variant_config() -> cogruntime.DataqueryConfig:
    """Lets the SDK decode targets whose datasource type is ``influxdb`` into InfluxQLQuery."""
    return cogruntime.DataqueryConfig(identifier=PLUGIN_ID, from_json_hook=InfluxQLQuery.from_json)


def register() -> None:
    cogruntime.register_dataquery_variant(variant_config())


class InfluxQL(cogbuilder.Builder[InfluxQLQuery]):
    """Builder: ``InfluxQL('SELECT … WHERE $timeFilter').ref_id('A').alias('CPD $tag_side')``."""

    _internal: InfluxQLQuery

    def __init__(self, query: str) -> None:
        self._internal = InfluxQLQuery(query=query, datasource=DATASOURCE)

    def build(self) -> InfluxQLQuery:
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self

    def alias(self, alias: str) -> Self:
        """Series name; Grafana fills ``$tag_<key>`` and ``$col`` from the result."""
        self._internal.alias = alias
        return self

    def table(self) -> Self:
        """Rows as a table (needed for the stride table, sensor health, events)."""
        self._internal.result_format = "table"
        return self

    def hide(self, hide: bool) -> Self:
        self._internal.hide = hide
        return self
