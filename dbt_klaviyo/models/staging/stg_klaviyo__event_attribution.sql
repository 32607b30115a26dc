-- Klaviyo's own attributions: the conversion event, the message event that earned it, and its message.
with attributions as (
    {{ tap_klaviyo.latest_rows(source('klaviyo', 'event_attribution'), ['id']) }}
)

select
    id as attribution_id,
    event_id,
    attributed_event_id,
    campaign_id,
    campaign_message_id,
    flow_id,
    flow_message_id,
    flow_message_variation_id,
    {{ tap_klaviyo.loaded_at() }} as loaded_at
from attributions
where {{ tap_klaviyo.deleted_at() }} is null
