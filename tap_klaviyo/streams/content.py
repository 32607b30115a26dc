"""The account itself, its content (templates, images, forms, feeds) and its catalog and coupons."""

from __future__ import annotations

from typing import Any

from typing_extensions import override

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
    name = "catalog_item"
    path = "/api/catalog-items"


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
