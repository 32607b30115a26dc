"""image: images matched by name, imported from the row's `image_url`; `hidden` updated when it differs.

Klaviyo cannot delete an image: a deleted row (with allow_deletes) hides it. Klaviyo suffixes a name that is
taken ("a.png" -> "a (1).png"), so the account is looked up by name before an import, and again after an
import that may or may not have applied: a blind retry would make a second image. Imports are capped at 100 a
day: the rows past the cap are rejected with that reason."""

from __future__ import annotations

from typing import Any

from typing_extensions import override

from target_klaviyo.sinks.objects import ObjectSink, Wanted, text_of
from target_klaviyo.writing.keyed import Known
from target_klaviyo.writing.references import IMAGE_FIELDS, IMAGES
from target_klaviyo.writing.rows import RowError


class ImageSink(ObjectSink):
    name = "image"
    collection = IMAGES
    fields = IMAGE_FIELDS
    cap_reason = (
        "Klaviyo's daily cap on image imports (100 a day) is reached: the image was not imported; run again tomorrow"
    )
    hide_attributes = {"hidden": True}

    @override
    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        """Image names are noted when read: a campaign message may name this image by its source id."""
        super().process_record(record, context)
        if record.get("_sdc_deleted_at") is None:
            self.klaviyo.names.note("image", record)

    @override
    def parse(self, row: dict[str, Any]) -> Wanted:
        name = text_of(row, "name")
        if row.get("_sdc_deleted_at") is not None:
            return Wanted(name)
        url = str(row.get("image_url") or "").strip()
        if not url:
            raise RowError("no image_url: an image is imported from its URL")
        return Wanted(name, {"hidden": bool(row.get("hidden"))}, extra={"import_from_url": url})

    @override
    def create(self, wanted: Wanted) -> Known:
        attributes = {"name": wanted.key, **wanted.extra, **wanted.attributes}
        return self.post(IMAGES, {"type": "image", "attributes": attributes})

    @override
    def update(self, known: Known, attributes: dict[str, Any]) -> None:
        self.patch(IMAGES, "image", known, attributes)

    @override
    def mirrored(self, known: Known) -> bool:
        return known.attributes.get("hidden") is not True
