"""The SDK's selection mask, remembering its answers (a per-record cost the SDK pays for every key)."""

from __future__ import annotations

from typing import Any

from singer_sdk import RESTStream
from singer_sdk.singerlib import SelectionMask
from typing_extensions import override


class MemoSelection(RESTStream[Any]):
    """KlaviyoStream's `mask`."""

    @property
    @override
    def mask(self) -> SelectionMask:
        """The SDK's selection mask, remembering its answers: the SDK looks every key of every record up in it,
        and a key inside a free-form object (event_properties, a profile's properties) is not listed, so each
        look-up would walk up to a listed parent again."""
        listed = super().mask
        memo = self.selection_memo
        if memo is None or memo.listed is not listed:
            memo = self.selection_memo = MemoMask(listed)
        return memo

    selection_memo: MemoMask | None = None


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
