"""The Klaviyo API layer both commands share: auth, pacing, retries, errors, the spec, JSON:API documents,
and the target's request path (client.py).

It knows nothing of streams or sinks.
"""
