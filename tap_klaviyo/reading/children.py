"""Streams whose rows need no request of their own, and a listing of ids for streams that partition by them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar

from singer_sdk.helpers.types import Context
from typing_extensions import override

from klaviyo_core import spec
from tap_klaviyo.reading.query import spec_template
from tap_klaviyo.reading.stream import KlaviyoStream


class SideloadedStream(KlaviyoStream):
    """A child whose records arrive in the parent's `included` (one request instead of a fan-out)."""

    #: Context key holding the parent id the included resources point to.
    parent_key: ClassVar[str] = ""
    state_partitioning_keys = ()
    arrives_with_parent = True
    #: The included resource type the records are made of, when it is not what `path` answers (a resource
    #: with no endpoint of its own: `path` is then the parent's).
    included_type: ClassVar[str | None] = None

    @classmethod
    @override
    def resource_of(cls, path: str) -> dict[str, Any]:
        if cls.included_type is None:
            return super().resource_of(path)
        return spec.included_resource(spec_template(path), cls.included_type, cls.method)

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        parent = self.parent_stream
        if context is None:
            return []
        rows = parent.fanout.take(self.name, str(context[self.parent_key]))
        return self.stats.counted(rows, selected=self.selected)

    @property
    def parent_stream(self) -> KlaviyoStream:
        assert self.parent_stream_type is not None
        parent = self.klaviyo_tap.streams[self.parent_stream_type.name]  # type: ignore[misc]
        assert isinstance(parent, KlaviyoStream)
        return parent


class DerivedStream(SideloadedStream):
    """Rows taken out of each parent record (a list inside it): no request of their own."""

    derived_from_parent = True
    #: Explicit columns of the rows (JSON schema properties).
    columns: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    @override
    def build_schema(cls) -> dict[str, Any]:
        return {"type": "object", "properties": dict(cls.columns)}

    def derive(self, parent: dict[str, Any]) -> list[dict[str, Any]]:
        raise NotImplementedError

    @override
    def post_process(self, row: dict[str, Any], context: Context | None = None) -> dict[str, Any] | None:
        return self.shape.complete(row)


class Listing(KlaviyoStream):
    """Every resource of a collection with only the fields asked for (ids of lists and segments to partition
    by, the conversion metric's id): the SDK's request path, never emitted as a stream."""

    def __init__(self, tap: Any, path: str, fields: Mapping[str, str]) -> None:
        self.path = path
        self.fields = dict(fields)
        super().__init__(
            tap, name=f"listing {path}", schema={"type": "object", "properties": {"id": {"type": ["string"]}}}
        )

    @override
    def first_page_params(self, context: Mapping[str, Any] | None) -> dict[str, str]:
        params = {"page[size]": str(self.endpoint.max_page_size)} if self.endpoint.max_page_size else {}
        return {**params, **self.fields}

    def all(self) -> Iterator[dict[str, Any]]:
        return iter(self.request_records(None))
