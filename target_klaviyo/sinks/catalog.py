"""catalog_category, catalog_item, catalog_variant: the catalog ($custom integration, $default catalog) matched
by external_id and written through bulk create / update / delete jobs of 100 objects.

References travel by external_id: a source account's catalog id is `<integration>:::<catalog>:::<external_id>`,
so an item's `category_ids` and a variant's `item_id` name external ids, which the target account's objects
are found by. An item waits until its categories are in the account (their jobs complete), a variant until
its item is; categories finish first, then items, then variants, at the end of the input at the latest.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, ClassVar

from typing_extensions import override

from target_klaviyo.sinks.bulk import BulkObjectSink, Planned, reference
from target_klaviyo.sinks.objects import Wanted, text_of
from target_klaviyo.writing.keyed import Action, KeyedObjects, Known
from target_klaviyo.writing.rows import RowError

PREFIX = "$custom:::$default:::"
CATEGORIES = "/api/catalog-categories"
ITEMS = "/api/catalog-items"
VARIANTS = "/api/catalog-variants"
SHARED = ("title", "description", "price", "url", "image_full_url", "image_thumbnail_url", "images")
SHARED_TAIL = ("custom_metadata", "published")
VERBS = {Action.CREATE: "create", Action.UPDATE: "update", Action.DELETE: "delete"}


def external_id_of(catalog_id: str) -> str:
    """`$custom:::$default:::SKU-1` -> `SKU-1` (Klaviyo's documented compound id)."""
    return catalog_id.rsplit(":::", 1)[-1]


class CatalogSink(BulkObjectSink):
    """One catalog object type; `relations` are the wanted attributes sent as relationships, not attributes."""

    kind: ClassVar[str] = ""
    key_attribute = "external_id"
    job_kind = "catalog job"
    required: ClassVar[tuple[str, ...]] = ()
    updatable: ClassVar[tuple[str, ...]] = ()
    relations: ClassVar[tuple[str, ...]] = ()

    @property
    def resource(self) -> str:
        return f"catalog-{self.kind}"

    @override
    def job_path(self, action: Action) -> str:
        return f"/api/{self.resource}-bulk-{VERBS[action]}-jobs"

    def collection_of(self, path: str) -> KeyedObjects:
        return self.klaviyo.objects.of(path, {}, "external_id", self.what)

    @override
    def parse(self, row: dict[str, Any]) -> Wanted:
        external_id = text_of(row, "external_id")
        if row.get("_sdc_deleted_at") is not None:
            return Wanted(external_id)
        attributes = {name: row[name] for name in self.updatable if row.get(name) is not None}
        missing = [name for name in self.required if row.get(name) in (None, "")]
        return Wanted(external_id, attributes, extra={"missing": missing})

    @override
    def object_id(self, wanted: Wanted) -> str:
        missing = wanted.extra.get("missing")
        if missing:
            raise RowError(f"no {missing[0]}: Klaviyo needs it to create a {self.resource}")
        return PREFIX + wanted.key

    @override
    def job_data(self, action: Action, part: list[Planned]) -> dict[str, Any]:
        objects = [self.job_object(action, planned) for planned in part]
        plural = {"item": "items", "variant": "variants", "category": "categories"}[self.kind]
        job_type = f"{self.resource}-bulk-{VERBS[action]}-job"
        return {"type": job_type, "attributes": {plural: {"data": objects}}}

    def job_object(self, action: Action, planned: Planned) -> dict[str, Any]:
        if action is Action.DELETE:
            return {"type": self.resource, "id": planned.object_id}
        attributes = {k: v for k, v in planned.attributes.items() if k not in self.relations}
        relationships = self.relationships(planned)
        out: dict[str, Any] = {"type": self.resource}
        if action is Action.CREATE:
            wanted = planned.wanted.attributes
            attributes = {k: v for k, v in wanted.items() if k not in self.relations}
            attributes.update(external_id=planned.wanted.key, integration_type="$custom", catalog_type="$default")
        else:
            out["id"] = planned.object_id
            relationships = {k: v for k, v in relationships.items() if k in planned.attributes}
        out["attributes"] = attributes
        if relationships:
            out["relationships"] = relationships
        return out

    def relationships(self, planned: Planned) -> dict[str, Any]:
        return {}


class CatalogCategorySink(CatalogSink):
    name = "catalog_category"
    kind = "category"
    collection = CATEGORIES
    required = ("name",)
    updatable = ("name",)


class CatalogItemSink(CatalogSink):
    """Items keep their categories: `category_ids` (the tap's) name the source's categories."""

    name = "catalog_item"
    kind = "item"
    collection = ITEMS
    finish_rank = 1
    required = ("title", "description", "url")
    updatable = (*SHARED, *SHARED_TAIL)
    relations = ("categories",)

    @override
    def parse(self, row: dict[str, Any]) -> Wanted:
        wanted = super().parse(row)
        if row.get("category_ids") is not None and row.get("_sdc_deleted_at") is None:
            wanted.extra["categories"] = sorted({external_id_of(str(c)) for c in row["category_ids"]})
        return wanted

    @override
    def resolve(self, wanted: Wanted, final: bool) -> bool:
        if wanted.deleting or "categories" not in wanted.extra:
            return True
        categories = self.collection_of(CATEGORIES)
        ids = []
        for external_id in wanted.extra["categories"]:
            found = reference(categories.settled(external_id), f"catalog category {external_id!r}", final)
            if found is None:
                return False
            ids.append(found)
        wanted.attributes["categories"] = sorted(ids)
        return True

    @cached_property
    def categories_of_items(self) -> dict[str, list[str]]:
        """The account's item id -> its category ids, read once (from the categories' side: they are few)."""
        out: dict[str, list[str]] = {}
        for known in self.collection_of(CATEGORIES).load().values():
            path = f"{CATEGORIES}/{known.id}/relationships/items"
            for item in self.klaviyo.client.pages(path, {}, self.what):
                out.setdefault(str(item["id"]), []).append(known.id)
        return {item: sorted(ids) for item, ids in out.items()}

    @override
    def decide(self, wanted: Wanted) -> tuple[Action, Known | None, dict[str, Any]]:
        found = self.objects.find(wanted.key)
        if found is not None and "categories" in wanted.attributes and "categories" not in found.attributes:
            found.attributes["categories"] = self.categories_of_items.get(found.id, [])
        return super().decide(wanted)

    @override
    def relationships(self, planned: Planned) -> dict[str, Any]:
        ids = planned.wanted.attributes.get("categories")
        if ids is None:
            return {}
        return {"categories": {"data": [{"type": "catalog-category", "id": cid} for cid in ids]}}


class CatalogVariantSink(CatalogSink):
    """Variants keep their item: `item_id` (the source's) names it; a variant is created under it."""

    name = "catalog_variant"
    kind = "variant"
    collection = VARIANTS
    finish_rank = 2
    required = ("title", "description", "sku", "inventory_quantity", "price", "url")
    updatable = ("sku", "inventory_policy", "inventory_quantity", *SHARED, *SHARED_TAIL)

    @override
    def parse(self, row: dict[str, Any]) -> Wanted:
        wanted = super().parse(row)
        if not row.get("item_id") and row.get("_sdc_deleted_at") is None:
            wanted.extra["missing"] = ["item_id", *wanted.extra.get("missing", [])]
        wanted.extra["item"] = external_id_of(str(row.get("item_id") or ""))
        return wanted

    @override
    def resolve(self, wanted: Wanted, final: bool) -> bool:
        if wanted.deleting or not wanted.extra["item"] or self.objects.find(wanted.key) is not None:
            return True  # only a create names the item
        label = f"catalog item {wanted.extra['item']!r}"
        found = reference(self.collection_of(ITEMS).settled(wanted.extra["item"]), label, final)
        wanted.extra["item_id"] = found
        return found is not None

    @override
    def relationships(self, planned: Planned) -> dict[str, Any]:
        item_id = planned.wanted.extra.get("item_id")
        return {"item": {"data": {"type": "catalog-item", "id": item_id}}} if item_id else {}
