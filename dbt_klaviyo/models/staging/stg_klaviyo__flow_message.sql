with flow_messages as (
    {{ tap_klaviyo.latest_rows(source('klaviyo', 'flow_messages'), ['id']) }}
)

select
    id as flow_message_id,
    flow_id,
    {{ tap_klaviyo.json_text('definition', ['name']) }} as message_name,
    channel,
    {{ tap_klaviyo.to_timestamp('created') }} as created_at,
    {{ tap_klaviyo.to_timestamp('updated') }} as updated_at
from flow_messages
where {{ tap_klaviyo.deleted_at() }} is null
