"""The SDK's selection mask, remembering its answers (a per-record cost the SDK pays for every key)."""

from __future__ import annotations

from singer_sdk.singerlib import SelectionMask
from typing_extensions import override


class SelectionMemo:
    """One stream's memo over the SDK's mask: the SDK looks every key of every record up in it, and a key inside
    a free-form object (event_properties, a profile's properties) is not listed, so each look-up would walk up
    to a listed parent again."""

    def __init__(self) -> None:
        self.memo: MemoMask | None = None

    def over(self, listed: SelectionMask) -> SelectionMask:
        """The memo for the SDK's current mask (a new one when the catalog, so the mask, changed)."""
        if self.memo is None or self.memo.listed is not listed:
            self.memo = MemoMask(listed)
        return self.memo


class MemoMask(SelectionMask):
    """A SelectionMask that keeps what it worked out for breadcrumbs its metadata does not list (up to a bound:
    free-form objects may have any keys)."""

    LIMIT = 10_000

    def __init__(self, listed: SelectionMask) -> None:
        super().__init__(listed)
        self.listed = listed

    @override
    def __missing__(self, breadcrumb: tuple[str, ...]) -> bool:
        selected = super().__missing__(breadcrumb)
        if len(self) < self.LIMIT:
            self[breadcrumb] = selected
        return selected
