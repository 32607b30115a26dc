"""Klaviyo's JSON:API pagination: follow `links.next` as given (its query carries the cursor and every filter)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from singer_sdk.exceptions import FatalAPIError
from singer_sdk.pagination import BaseHATEOASPaginator
from typing_extensions import override

from klaviyo_core.documents import next_link


@dataclass(frozen=True)
class ApiPage:
    """One response's records, and whether Klaviyo has a next page (windows cut a range after the first)."""

    records: list[dict[str, Any]]
    has_next: bool


class JsonApiPaginator(BaseHATEOASPaginator):
    """`links.next` of each page, refused when it points at another host (the key must not leave Klaviyo)."""

    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host

    @override
    def get_next_url(self, response: requests.Response) -> str | None:
        following = next_link(response.content)
        if following and urlsplit(following).netloc != self.host:
            msg = f"refusing to follow a link to another host ({urlsplit(following).netloc})"
            raise FatalAPIError(msg)
        return following
