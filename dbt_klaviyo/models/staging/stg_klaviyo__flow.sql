with flows as (
    {{ tap_klaviyo.latest_rows(source('klaviyo', 'flow'), ['id']) }}
)

select
    id as flow_id,
    name as flow_name,
    status,
    archived,
    trigger_type,
    {{ tap_klaviyo.to_timestamp('created') }} as created_at,
    {{ tap_klaviyo.to_timestamp('updated') }} as updated_at
from flows
where {{ tap_klaviyo.deleted_at() }} is null
