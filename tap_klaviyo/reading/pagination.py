"""Klaviyo's JSON:API pagination: follow `links.next` as given (its query carries the cursor and every filter)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import requests
from singer_sdk.exceptions import FatalAPIError
from singer_sdk.pagination import BaseHATEOASPaginator
from typing_extensions import override

from tap_klaviyo.api.documents import next_link


class JsonApiPaginator(BaseHATEOASPaginator):
    """`links.next` of each page, refused when it points at another host (the key must not leave Klaviyo).

    `next_of` reads the link from the page the stream has already parsed (else the body is scanned for it).
    """

    def __init__(self, host: str, next_of: Callable[[requests.Response], str | None] | None = None) -> None:
        super().__init__()
        self.host = host
        self.next_of = next_of or (lambda response: next_link(response.content))

    @override
    def get_next_url(self, response: requests.Response) -> str | None:
        following = self.next_of(response)
        if following and urlsplit(following).netloc != self.host:
            msg = f"refusing to follow a link to another host ({urlsplit(following).netloc})"
            raise FatalAPIError(msg)
        return following

    @override
    def continue_if_empty(self, response: requests.Response) -> bool:
        """A page may hold nothing the stream keeps (a window's seam); the cursor still goes on."""
        return self.next_of(response) is not None
