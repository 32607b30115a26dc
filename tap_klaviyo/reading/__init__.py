"""The tap's machinery: the base stream on RESTStream, queries, windows, fetch-ahead, bookmarks, full reads,
progress and the run that ties them together. Streams (tap_klaviyo/streams) build on it; it builds on the API layer.
"""
