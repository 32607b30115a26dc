"""template: templates matched by name; created as CODE templates with their html and text, updated when
either differs, deleted (with allow_deletes) when the row carries `_sdc_deleted_at`.

Klaviyo allows at most 1,000 templates created through the API per account: past it, its refusal is the
row's reject reason."""

from __future__ import annotations

from typing import Any

from typing_extensions import override

from target_klaviyo.sinks.objects import ObjectSink, Wanted, text_of
from target_klaviyo.writing.keyed import Known, delete_object
from target_klaviyo.writing.rows import RowError

TEMPLATES = "/api/templates"


class TemplateSink(ObjectSink):
    name = "template"
    collection = TEMPLATES
    fields = {"fields[template]": "name,html,text"}

    @override
    def parse(self, row: dict[str, Any]) -> Wanted:
        name = text_of(row, "name")
        if row.get("_sdc_deleted_at") is not None:
            return Wanted(name)
        html = row.get("html")
        if not html:
            raise RowError("no html: a template is written as a CODE template from its html")
        return Wanted(name, {"name": name, "html": str(html), "text": row.get("text")})

    @override
    def create(self, wanted: Wanted) -> Known:
        attributes = {"editor_type": "CODE", **{k: v for k, v in wanted.attributes.items() if v is not None}}
        return self.post(TEMPLATES, {"type": "template", "attributes": attributes})

    @override
    def update(self, known: Known, attributes: dict[str, Any]) -> None:
        self.patch(TEMPLATES, "template", known, attributes)

    @override
    def delete(self, known: Known) -> None:
        delete_object(self.klaviyo.client, f"{TEMPLATES}/{known.id}", self.what)
