"""The objects the tap reads less often: images, the catalog, coupons, forms, reviews, web feeds, push tokens,
universal content and tracking settings, generated from the spec with a few realistic fields."""

from __future__ import annotations

import random

from .blueprint import Blueprint
from .fake import default_attributes
from .records import DAY, Rec, fmt, short_id


def build_objects(bp: Blueprint) -> None:
    """Every secondary object, from one random stream in a fixed order (the account's ids depend on it)."""
    rng = bp.rng("secondary")
    sc = bp.spec_size.scale
    _images(bp, rng, sc)
    _catalog(bp, rng, sc)
    _coupons(bp, rng, sc)
    _forms(bp, rng, sc)
    _reviews(bp, rng, sc)
    _web_feeds(bp, rng, sc)
    _push_tokens(bp, rng, sc)
    _universal_content(bp, rng, sc)


def _stamp(bp: Blueprint, rng: random.Random) -> str:
    return fmt(bp.stamp(rng))


def _images(bp: Blueprint, rng: random.Random, sc: int) -> None:
    """Banner images (what push and SMS messages show)."""
    for i in range(8 * sc):
        bp.add(
            "image",
            str(rng.randrange(10**7, 10**8)),
            {
                "name": f"banner-{i}.png",
                "image_url": f"https://cdn.example.com/images/banner-{i}.png",
                "format": ("png", "jpeg", "gif")[i % 3],
                "size": 1000 + i * 731,
                "hidden": i % 7 == 6,
                "updated_at": _stamp(bp, rng),
            },
        )


def _catalog(bp: Blueprint, rng: random.Random, sc: int) -> None:
    """Categories, items with two variants each."""
    categories = []
    for i in range(3 * sc):
        cid = f"$custom:::$default:::cat-{i}"
        bp.add(
            "catalog-category",
            cid,
            {"external_id": f"cat-{i}", "name": f"Category {i}", "updated": _stamp(bp, rng)},
            {"items": []},
        )
        categories.append(cid)
    for i in range(10 * sc):
        iid = f"$custom:::$default:::SKU-{i:04d}"
        attrs = dict(default_attributes("catalog-item"))
        created = _stamp(bp, rng)
        price = round(9.5 + i * 3.25, 2)
        attrs.update(
            external_id=f"SKU-{i:04d}",
            title=f"Product {i}",
            description=f"A fine product #{i}",
            price=price,
            url=f"https://shop.example.com/p/{i}",
            published=i % 9 != 8,
            created=created,
            updated=created,
        )
        cat = categories[i % len(categories)]
        bp.put(Rec("catalog-item", iid, attrs, {"variants": [], "categories": [cat]}))
        bp.store["catalog-category"][cat].rels["items"].append(iid)
        for v in range(2):
            vid = f"$custom:::$default:::SKU-{i:04d}-{v}"
            v_attrs = dict(default_attributes("catalog-variant"))
            v_attrs.update(
                external_id=f"SKU-{i:04d}-{v}",
                title=f"Product {i} / {'SM'[v]}",
                sku=f"SKU-{i:04d}-{v}",
                price=price,
                published=True,
                created=created,
                updated=created,
                inventory_quantity=(i * 7 + v) % 40,
            )
            bp.put(Rec("catalog-variant", vid, v_attrs, {"item": iid}))
            bp.store["catalog-item"][iid].rels["variants"].append(vid)


def _coupons(bp: Blueprint, rng: random.Random, sc: int) -> None:
    """Coupons, a dozen codes each, some assigned to profiles."""
    profiles = bp.profile_order
    for i in range(3 * sc):
        cpid = f"WELCOME{10 + i}"
        bp.add(
            "coupon",
            cpid,
            {
                "external_id": cpid,
                "description": f"{10 + i}% off first order",
                "monitor_configuration": None,
            },
            {"coupon-codes": []},
        )
        for j in range(12):
            code = f"{cpid}-{j:03d}-{short_id(rng, 4).upper()}"
            status = ("UNASSIGNED", "ASSIGNED_TO_PROFILE", "USED")[j % 3]
            profile = profiles[(i * 12 + j) % len(profiles)] if status != "UNASSIGNED" else None
            bp.add(
                "coupon-code",
                code,
                {
                    "unique_code": code,
                    "status": status,
                    "expires_at": fmt(bp.t1 + (j % 4) * 30 * DAY) if j % 2 else None,
                },
                {"coupon": cpid, "profile": profile},
            )
            bp.store["coupon"][cpid].rels["coupon-codes"].append(code)


def _forms(bp: Blueprint, rng: random.Random, sc: int) -> None:
    """Signup forms with one or two versions."""
    for i in range(2 * sc):
        fid = short_id(rng)
        created_us = bp.stamp(rng, bp.t0, bp.t1 - 100 * DAY)
        bp.add(
            "form",
            fid,
            {
                "name": f"Signup form {i}",
                "status": ("live", "draft")[i % 2],
                "ab_test": i % 3 == 0,
                "created_at": fmt(created_us),
                "updated_at": fmt(created_us + DAY * (i + 1)),
            },
            {"form-versions": []},
        )
        for v in range(1 + i % 2):
            vid = str(rng.randrange(10**6, 10**7))
            bp.add(
                "form-version",
                vid,
                {
                    "form_type": ("popup", "embed", "flyout", "full_page", "banner")[(i + v) % 5],
                    "variation_name": f"Variation {'AB'[v]}",
                    "ab_test": None if v == 0 else {"variation_name": "B"},
                    "status": ("live", "draft")[v],
                    "created_at": fmt(created_us + v * DAY),
                    "updated_at": fmt(created_us + (v + 2) * DAY),
                },
                {"form": fid},
            )
            bp.store["form"][fid].rels["form-versions"].append(vid)


def _reviews(bp: Blueprint, rng: random.Random, sc: int) -> None:
    """Product reviews (one per catalog item in turn)."""
    items = list(bp.store["catalog-item"])
    for i in range(10 * sc):
        rid = str(rng.randrange(10**6, 10**7))
        attrs = dict(default_attributes("review"))
        created = _stamp(bp, rng)
        attrs.update(
            email=f"reviewer{i}@example.com",
            status=None,
            verified=i % 2 == 0,
            review_type="review",
            created=created,
            updated=created,
            images=[],
            rating=1 + (i * 3) % 5,
            author=f"Reviewer {i}",
            content=f"Review text {i}",
            title=f"Review {i}",
            smart_quote=None,
            public_reply=None,
        )
        bp.put(Rec("review", rid, attrs, {"item": items[i % len(items)], "events": []}))


def _web_feeds(bp: Blueprint, rng: random.Random, sc: int) -> None:
    """Product feeds."""
    for i in range(3):
        created = _stamp(bp, rng)
        bp.add(
            "web-feed",
            short_id(rng),
            {
                "name": f"Product feed {i}",
                "url": f"https://shop.example.com/feed-{i}.json",
                "request_method": "get",
                "content_type": "json",
                "created": created,
                "updated": created,
                "status": "ok",
            },
        )


def _push_tokens(bp: Blueprint, rng: random.Random, sc: int) -> None:
    """Push tokens of every tenth profile (at most 25 per scale step)."""
    profiles = bp.profile_order
    for i in range(min(len(profiles) // 10, 25 * sc)):
        pid = profiles[i * 7 % len(profiles)]
        token_id = short_id(rng, 26)
        attrs = dict(default_attributes("push-token"))
        created = _stamp(bp, rng)
        attrs.update(
            created=created,
            token=f"tok{short_id(rng, 32)}",
            enablement_status="AUTHORIZED",
            platform=("ios", "android")[i % 2],
            vendor=("apns", "fcm")[i % 2],
            background="AVAILABLE",
            recorded_date=created,
        )
        bp.put(Rec("push-token", token_id, attrs, {"profile": pid}))
        bp.store["profile"][pid].rels["push-tokens"].append(token_id)


def _universal_content(bp: Blueprint, rng: random.Random, sc: int) -> None:
    """Reusable template blocks, and the account's tracking settings."""
    for i in range(3):
        uid = short_id(rng)
        attrs = dict(default_attributes("template-universal-content"))
        created = _stamp(bp, rng)
        attrs.update(name=f"Footer block {i}", created=created, updated=created)
        bp.put(Rec("template-universal-content", uid, attrs))
    bp.put(Rec("tracking-setting", bp.account_id, dict(default_attributes("tracking-setting"))))
