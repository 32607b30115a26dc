"""The account itself, its content (templates, images, forms, feeds) and its catalog and coupons."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from typing_extensions import override

from tap_klaviyo.reading.children import Listing
from tap_klaviyo.reading.stream import KlaviyoStream


class AccountStream(KlaviyoStream):
    name = "account"
    path = "/api/accounts"


class TemplateStream(KlaviyoStream):
    name = "template"
    path = "/api/templates"
    replication_key = "updated"


class ImageStream(KlaviyoStream):
    name = "image"
    path = "/api/images"
    replication_key = "updated_at"


class TagStream(KlaviyoStream):
    name = "tag"
    path = "/api/tags"


class TagGroupStream(KlaviyoStream):
    name = "tag_group"
    path = "/api/tag-groups"


class CouponStream(KlaviyoStream):
    name = "coupon"
    path = "/api/coupons"

    @override
    def get_child_context(self, record: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"coupon_id": record["id"]}


class CouponCodeStream(KlaviyoStream):
    """Codes per coupon: /api/coupon-codes insists on a coupon filter, the per-coupon path does not."""

    name = "coupon_code"
    path = "/api/coupons/{coupon_id}/coupon-codes"
    parent_stream_type = CouponStream
    state_partitioning_keys = ()
    context_columns = ("coupon_id",)
    skip_not_found = True


class CatalogItemStream(KlaviyoStream):
    """Items with `category_ids`: the spec's item has no categories relationship, so they are read from the
    other side, each category's item ids (categories are few; one request per item would be one per row)."""

    name = "catalog_item"
    path = "/api/catalog-items"
    extra_properties: ClassVar[dict[str, dict[str, Any]]] = {
        "category_ids": {"type": ["array", "null"], "items": {"type": "string"}}
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Item id -> the ids of its categories, in category order (read as the stream's sync begins).
        self.categories_of_items: dict[str, list[str]] = {}

    def read_categories_of_items(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        categories = Listing(self.klaviyo_tap, "/api/catalog-categories", {"fields[catalog-category]": "name"})
        items = Listing(self.klaviyo_tap, "/api/catalog-categories/{category_id}/relationships/items", {})
        for category in categories.all():
            for item in items.request_records({"category_id": str(category["id"])}):
                out.setdefault(str(item["id"]), []).append(str(category["id"]))
        return out

    @override
    def get_records(self, context: Any) -> Iterable[dict[str, Any]]:
        """The items; once the first one is read (the key may read the catalog: its scope is proven), the
        categories' item ids, before that first item reaches `post_process`."""
        records = iter(super().get_records(context))
        for first in records:
            self.categories_of_items = self.read_categories_of_items()
            yield first
            yield from records

    @override
    def post_process(self, row: dict[str, Any], context: Any = None) -> dict[str, Any] | None:
        record = super().post_process(row, context)
        if record is not None:
            record["category_ids"] = self.categories_of_items.get(str(record["id"]), [])
        return record


class CatalogVariantStream(KlaviyoStream):
    name = "catalog_variant"
    path = "/api/catalog-variants"


class CatalogCategoryStream(KlaviyoStream):
    name = "catalog_category"
    path = "/api/catalog-categories"


class FormStream(KlaviyoStream):
    name = "form"
    path = "/api/forms"
    replication_key = "updated_at"

    @override
    def get_child_context(self, record: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"form_id": record["id"]}


class FormVersionStream(KlaviyoStream):
    name = "form_version"
    path = "/api/forms/{form_id}/form-versions"
    parent_stream_type = FormStream
    replication_key = "updated_at"
    context_columns = ("form_id",)
    skip_not_found = True


class ReviewStream(KlaviyoStream):
    """Reviews can only be filtered on `created`, yet they change (status, replies): read in full."""

    name = "review"
    path = "/api/reviews"
    sort_by = "updated"


class WebFeedStream(KlaviyoStream):
    name = "web_feed"
    path = "/api/web-feeds"
    replication_key = "updated"


class PushTokenStream(KlaviyoStream):
    name = "push_token"
    path = "/api/push-tokens"
