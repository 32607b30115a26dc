"""target-klaviyo: Singer records written into Klaviyo (sinks per object, the writing machinery, the target)."""
