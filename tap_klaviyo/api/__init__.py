"""The Klaviyo API layer the tap and the target share (the target's request path lives here)."""
