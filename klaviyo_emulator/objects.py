"""Writes of the objects a team manages one at a time: templates, segments, images and lists.

Bodies have passed the spec's request schema (server.py); this module adds what the schema cannot say:
references that must exist (a segment definition's lists, segments and metrics), the template cap, a PATCH
body naming the resource of its path, and Klaviyo's renaming of an image whose name is taken. Burst, steady
and daily limits (segments and images 100 a day) come from the spec through the rate limiter.
"""

from __future__ import annotations

import random
import re
import urllib.parse
from collections.abc import Iterator
from typing import Any

from .api import ApiError, RequestContext, invalid, not_found
from .data import AccountData
from .profiles import now_micros
from .records import Rec, fmt, short_id
from .render import RenderOptions, render
from .spec import Operation

#: "If there are 1,000 or more templates in an account, creation will fail" (POST /api/templates).
TEMPLATE_CAP = 1000
EDITOR_TYPES = ("CODE", "USER_DRAGGABLE")
IMAGE_FORMATS = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg", "gif": "gif", "webp": "webp"}
_DATA_URI = re.compile(r"^data:image/(\w+);base64,[A-Za-z0-9+/=]+$")
OBJECT_WRITES = {
    ("POST", "/api/templates"),
    ("PATCH", "/api/templates/{id}"),
    ("DELETE", "/api/templates/{id}"),
    ("POST", "/api/segments"),
    ("PATCH", "/api/segments/{id}"),
    ("DELETE", "/api/segments/{id}"),
    ("POST", "/api/images"),
    ("PATCH", "/api/images/{id}"),
    ("PATCH", "/api/lists/{id}"),
    ("DELETE", "/api/lists/{id}"),
}


def now_stamp() -> str:
    return fmt(now_micros())


def body_data(ctx: RequestContext) -> dict[str, Any]:
    """`data` of a validated body (the schema made it an object)."""
    body = ctx.body if isinstance(ctx.body, dict) else {}
    data = body.get("data")
    return data if isinstance(data, dict) else {}


def path_id(ctx: RequestContext, data: dict[str, Any] | None = None) -> str:
    """The path's id; a body naming another resource is a conflict (JSON:API: 409)."""
    rid = ctx.path_params.get("id") or ctx.path_params.get("job_id") or ""
    if data is not None and str(data.get("id")) != rid:
        raise ApiError(
            409,
            "conflict",
            "Conflict.",
            f"The id in the request body ({data.get('id')}) does not match the id in the URL ({rid}).",
            pointer="/data/id",
        )
    return rid


def resource_doc(
    op: Operation, ctx: RequestContext, data: AccountData, rec: Rec, include: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The write's answer: the resource as the operation's response schema shapes it."""
    if op.data is None:
        return {"data": {"type": rec.type, "id": rec.id, "attributes": dict(rec.attrs)}}
    return {"data": render(rec, op.data, RenderOptions(ctx.base), data.related_ids, include)}


def existing(data: AccountData, rtype: str, rid: str) -> Rec:
    rec = data.store.get(rtype, {}).get(rid)
    if rec is None:
        raise not_found(f"A {rtype} with id {rid} was not found.")
    return rec


def references(node: Any, pointer: str) -> Iterator[tuple[str, str, str]]:
    """(kind, id, pointer) of every list/segment (`group_ids`) and metric (`metric_id`) a definition names."""
    if isinstance(node, dict):
        for key, value in node.items():
            at = f"{pointer}/{key}"
            if key == "group_ids" and isinstance(value, list):
                yield from (("group", str(gid), f"{at}/{i}") for i, gid in enumerate(value))
            elif key == "metric_id" and isinstance(value, str):
                yield "metric", value, at
            else:
                yield from references(value, at)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from references(item, f"{pointer}/{i}")


class ObjectApi:
    """Templates, segments, images and lists written into one `AccountData` (nothing is queued)."""

    def __init__(self, data: AccountData, template_cap: int = TEMPLATE_CAP) -> None:
        self.data = data
        self.template_cap = template_cap
        self.rng = random.Random(f"objects:{data.seed}")

    @staticmethod
    def serves(op: Operation) -> bool:
        return (op.method, op.template) in OBJECT_WRITES

    def handle(self, op: Operation, ctx: RequestContext) -> tuple[int, dict[str, Any] | bytes]:
        kind = op.template.split("/")[2][:-1]  # templates -> template
        with self.data.lock:
            if op.method == "DELETE":
                rid = path_id(ctx)
                existing(self.data, kind, rid)
                self.data.delete(kind, rid)
                return 204, b""
            data = body_data(ctx)
            attrs = data.get("attributes") or {}
            if op.method == "POST":
                create = {"template": self._new_template, "segment": self._new_segment, "image": self._new_image}
                rec = create[kind](attrs)
                self.data.store.setdefault(kind, {})[rec.id] = rec
                status = 201
            else:
                rec = existing(self.data, kind, path_id(ctx, data))
                self._update(rec, attrs)
                status = 200
            self.data.generation += 1
            return status, resource_doc(op, ctx, self.data, rec)

    # ---- creation --------------------------------------------------------------------------------
    def _new_template(self, attrs: dict[str, Any]) -> Rec:
        listed = [r for r in self.data.store.get("template", {}).values() if r.extra.get("listed", True)]
        if len(listed) >= self.template_cap:
            raise invalid(
                f"There are {len(listed)} templates in this account: at most {self.template_cap} templates "
                "can be created through the API.",
                pointer="/data",
            )
        editor = attrs["editor_type"]
        if editor not in EDITOR_TYPES:
            raise invalid(
                f"'{editor}' is not a valid editor_type; expected one of {', '.join(EDITOR_TYPES)}.",
                pointer="/data/attributes/editor_type",
            )
        if editor == "CODE" and not attrs.get("html"):
            raise invalid("html is required for a CODE template.", pointer="/data/attributes/html")
        if editor == "USER_DRAGGABLE" and not attrs.get("definition"):
            raise invalid(
                "definition is required for a USER_DRAGGABLE template.", pointer="/data/attributes/definition"
            )
        stamp = now_stamp()
        values = {
            "name": attrs["name"],
            "editor_type": editor,
            "html": attrs.get("html") or "",
            "text": attrs.get("text"),
            "amp": attrs.get("amp"),
            "definition": attrs.get("definition"),
            "created": stamp,
            "updated": stamp,
        }
        return Rec("template", short_id(self.rng), values)

    def _new_segment(self, attrs: dict[str, Any]) -> Rec:
        self._check_definition(attrs["definition"])
        stamp = now_stamp()
        values = {
            "name": attrs["name"],
            "definition": attrs["definition"],
            "created": stamp,
            "updated": stamp,
            "is_active": True,
            "is_processing": False,
            "is_starred": bool(attrs.get("is_starred", False)),
        }
        sid = short_id(self.rng)
        self.data.members["segment"][sid] = {}
        return Rec("segment", sid, values, {"tags": [], "flow-triggers": []})

    def _check_definition(self, definition: Any) -> None:
        groups = {**self.data.store.get("list", {}), **self.data.store.get("segment", {})}
        metrics = self.data.store.get("metric", {})
        for kind, rid, pointer in references(definition, "/data/attributes/definition"):
            known = groups if kind == "group" else metrics
            if rid not in known:
                what = "list or segment" if kind == "group" else "metric"
                raise invalid(f"The {what} {rid} named in the definition does not exist.", pointer=pointer)

    def _new_image(self, attrs: dict[str, Any]) -> Rec:
        source = str(attrs["import_from_url"])
        data_uri = _DATA_URI.match(source)
        parsed = urllib.parse.urlsplit(source)
        if data_uri is None and (parsed.scheme not in ("http", "https") or not parsed.netloc):
            raise invalid(
                "import_from_url must be an http(s) URL or a base64 image data URI.",
                pointer="/data/attributes/import_from_url",
            )
        filename = parsed.path.rsplit("/", 1)[-1] if data_uri is None else ""
        ext = (
            data_uri.group(1).lower() if data_uri else (filename.rsplit(".", 1)[-1].lower() if "." in filename else "")
        )
        if ext not in IMAGE_FORMATS:
            raise invalid(
                f"Unsupported image type '{ext or source[:40]}'; expected one of {', '.join(sorted(IMAGE_FORMATS))}.",
                pointer="/data/attributes/import_from_url",
            )
        iid = str(self.rng.randrange(10**8, 10**9))
        values = {
            "name": self._free_name(str(attrs.get("name") or filename or f"image-{iid}.{ext}")),
            "image_url": f"https://cdn.example.com/images/{iid}.{ext}",
            "format": IMAGE_FORMATS[ext],
            "size": 1000 + len(source) * 7,
            "hidden": bool(attrs.get("hidden", False)),
            "updated_at": now_stamp(),
        }
        return Rec("image", iid, values)

    def _free_name(self, name: str) -> str:
        """A taken image name gets a numeric suffix before its extension ("a.png" -> "a (1).png")."""
        taken = {r.attrs.get("name") for r in self.data.store.get("image", {}).values()}
        if name not in taken:
            return name
        stem, dot, ext = name.rpartition(".") if "." in name else (name, "", "")
        n = 1
        while f"{stem} ({n}){dot}{ext}" in taken:
            n += 1
        return f"{stem} ({n}){dot}{ext}"

    # ---- updates ---------------------------------------------------------------------------------
    def _update(self, rec: Rec, attrs: dict[str, Any]) -> None:
        values = dict(rec.attrs)
        if rec.type == "template":
            values.update({k: attrs[k] for k in ("name", "html", "text", "amp", "definition") if k in attrs})
        elif rec.type == "segment":
            if "definition" in attrs:
                self._check_definition(attrs["definition"])
            values.update({k: attrs[k] for k in ("name", "definition", "is_starred", "is_active") if k in attrs})
        elif rec.type == "image":
            values.update({k: attrs[k] for k in ("name", "hidden") if k in attrs})
        else:
            values.update({k: attrs[k] for k in ("name", "opt_in_process") if k in attrs})
        changed = values != rec.attrs
        field = "updated_at" if "updated_at" in values else "updated"
        if changed:
            values[field] = now_stamp()
        rec.attrs = values


__all__ = ["TEMPLATE_CAP", "ObjectApi", "body_data", "existing", "now_stamp", "path_id", "resource_doc"]
