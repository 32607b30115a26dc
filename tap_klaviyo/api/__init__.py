"""The Klaviyo API layer both commands share: auth, pacing, retries, errors, the spec, JSON:API documents.

It knows nothing of streams or sinks.
"""
