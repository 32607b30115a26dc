"""What vulture (the dead-code finder) cannot see being used: the hooks that singer-sdk, requests and the
package's entry points call by name. Run it with this file (CONTRIBUTING.md, "Dead code"):

    vulture tap_klaviyo klaviyo_core target_klaviyo scripts/vulture_whitelist.py --min-confidence 60

Each line names one exception and who uses it. Vulture matches names, so a name listed here is taken as used
everywhere: add a name only when every definition of it is such a hook. The references are real attributes
(mypy checks this file), so a hook renamed or removed breaks the check instead of hiding dead code.
"""

from __future__ import annotations

import requests
from singer_sdk.streams.rest import HTTPRequest

from klaviyo_core.auth import KlaviyoOAuthAuthenticator
from tap_klaviyo.reading.batch_files import FastJsonLinesBatcher
from tap_klaviyo.reading.children import SideloadedStream
from tap_klaviyo.reading.output import SingerOutput
from tap_klaviyo.reading.pagination import JsonApiPaginator
from tap_klaviyo.reading.stream import KlaviyoStream
from tap_klaviyo.streams.reports import ReportStream
from tap_klaviyo.tap import TapKlaviyo
from target_klaviyo.sinks.base import KlaviyoSink
from target_klaviyo.sinks.event import EventSink
from target_klaviyo.target import StateGate, TargetKlaviyo


def _read_by_the_sdk(request: HTTPRequest) -> str:
    """`safe_query_chars` (a slot, so named on an instance): set on the request the SDK builds, read by its URL
    encoding."""
    return request.safe_query_chars


def _read_by_requests(session: requests.Session) -> tuple[object, bool]:
    """`verify` and `trust_env`, set once on the connection's session (klaviyo_core/session.py): read by requests
    on every request it sends."""
    return session.verify, session.trust_env


_USED_BY_NAME = (
    _read_by_the_sdk,
    _read_by_requests,
    # singer-sdk's OAuthAuthenticator: the token request's body, and every request's auth.
    KlaviyoOAuthAuthenticator.oauth_request_body,
    KlaviyoOAuthAuthenticator.authenticate_request,
    # The `singer_sdk.batch_encoders` entry point in pyproject.toml.
    FastJsonLinesBatcher,
    # singer-sdk's Stream and RESTStream: declarations and hooks its sync loop reads and calls.
    SideloadedStream.state_partitioning_keys,
    KlaviyoStream.TYPE_CONFORMANCE_LEVEL,
    KlaviyoStream.check_sorted,
    KlaviyoStream.http_headers,
    KlaviyoStream.requests_session,
    KlaviyoStream.request_decorator,
    KlaviyoStream.get_new_paginator,
    KlaviyoStream.get_url_params,
    KlaviyoStream.validate_response,
    KlaviyoStream.parse_response,
    KlaviyoStream.get_replication_key_signpost,
    ReportStream.prepare_request_payload,
    JsonApiPaginator.get_next_url,
    # singer-sdk's message writer (the Tap's `message_writer_class`).
    SingerOutput.write_message,
    # singer-sdk's Tap and Target: class attributes and hooks of the plugin base classes, and the CLI's
    # `--test` callback.
    TapKlaviyo.package_name,
    TapKlaviyo.config_jsonschema,
    TapKlaviyo.message_writer_class,
    TapKlaviyo.discover_streams,
    TapKlaviyo.cb_test,
    TargetKlaviyo.get_sink_class,
    StateGate.deserialize_json,
    # singer-sdk's BatchSink: a batch's size and its drain.
    EventSink.MAX_SIZE_DEFAULT,
    KlaviyoSink.process_batch,
)
