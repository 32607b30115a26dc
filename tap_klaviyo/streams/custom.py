"""Streams the user defines in settings (`custom_streams`): any GET collection of the API.

The path is checked against the vendored spec when the tap starts, and the stream gets the spec's schema
for that endpoint, shaped like every other stream's records.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from typing_extensions import override

from klaviyo_core import spec
from tap_klaviyo.reading.stream import KlaviyoStream

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class CustomStream(KlaviyoStream):
    """A collection named in settings; extra query parameters are sent on the first page."""

    params: ClassVar[dict[str, str]] = {}

    @classmethod
    @override
    def schema_source(cls) -> dict[str, Any]:
        return cls.build_schema()

    @override
    def first_page_params(self, context: Mapping[str, Any] | None) -> dict[str, str]:
        params = super().first_page_params(context)
        for key, value in self.params.items():
            if key == "filter" and params.get("filter"):
                params["filter"] = f"{value},{params['filter']}"
            else:
                params[key] = value
        return params


def custom_stream_errors(items: Any, taken: set[str]) -> list[str]:
    """What is wrong with the `custom_streams` setting, one line per problem."""
    if items is None:
        return []
    if not isinstance(items, list):
        return ["custom_streams must be a list of {name, path, params, replication_key} objects"]
    errors: list[str] = []
    collections = set(spec.collection_paths())
    for index, item in enumerate(items):
        where = f"custom_streams[{index}]"
        if not isinstance(item, dict):
            errors.append(f"{where} must be an object with name and path")
            continue
        name, path = item.get("name"), item.get("path")
        if not isinstance(name, str) or not _NAME.match(name):
            errors.append(f"{where}.name {name!r} must be lower_snake_case")
        elif name in taken:
            errors.append(f"{where}.name {name!r} is already a stream name: choose another")
        if path not in collections or "{" in str(path):
            errors.append(
                f"{where}.path {path!r} is not a GET collection of Klaviyo's API revision {spec.SPEC_REVISION} "
                "(e.g. /api/custom-metrics)"
            )
            continue
        key = item.get("replication_key")
        if key:
            properties = spec.record_schema(path)["properties"]
            rules = spec.endpoint(path)
            if key not in properties or not rules.filters.get(key, frozenset()) & {
                "greater-than",
                "greater-or-equal",
            }:
                errors.append(f"{where}.replication_key {key!r} cannot be filtered on {path}: leave it out")
        params = item.get("params") or {}
        if not isinstance(params, dict):
            errors.append(f"{where}.params must be an object of query parameters")
            continue
        unknown = [p for p in params if p not in spec.endpoint(path).params]
        if unknown:
            errors.append(f"{where}.params {unknown} are not parameters of GET {path}")
        if isinstance(name, str):
            taken.add(name)
    return errors


def custom_stream_types(items: list[dict[str, Any]] | None) -> list[type[KlaviyoStream]]:
    types: list[type[KlaviyoStream]] = []
    for item in items or []:
        attributes = {
            "name": item["name"],
            "path": item["path"],
            "replication_key": item.get("replication_key") or None,
            "params": {str(k): str(v) for k, v in (item.get("params") or {}).items()},
        }
        types.append(type(f"Custom_{item['name']}", (CustomStream,), attributes))
    return types
