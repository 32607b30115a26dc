with campaigns as (
    {{ tap_klaviyo.latest_rows(source('klaviyo', 'campaign'), ['id']) }}
)

select
    id as campaign_id,
    name as campaign_name,
    channel,
    status,
    archived,
    {{ tap_klaviyo.to_timestamp('created_at') }} as created_at,
    {{ tap_klaviyo.to_timestamp('scheduled_at') }} as scheduled_at,
    {{ tap_klaviyo.to_timestamp('send_time') }} as send_time,
    {{ tap_klaviyo.to_timestamp('updated_at') }} as updated_at
from campaigns
where {{ tap_klaviyo.deleted_at() }} is null
