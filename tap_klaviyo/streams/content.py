"""The account itself and its content: templates and the like."""

from __future__ import annotations

from tap_klaviyo.client import KlaviyoStream


class AccountStream(KlaviyoStream):
    name = "account"
    path = "/api/accounts"


class TemplateStream(KlaviyoStream):
    name = "template"
    path = "/api/templates"
    replication_key = "updated"
