"""target-klaviyo's machinery: settings, bulk jobs, identity resolution, rejects."""
