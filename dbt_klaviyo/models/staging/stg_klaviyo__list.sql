with lists as (
    {{ tap_klaviyo.latest_rows(source('klaviyo', 'list'), ['id']) }}
)

select
    id as list_id,
    name as list_name,
    {{ tap_klaviyo.to_timestamp('created') }} as created_at
from lists
where {{ tap_klaviyo.deleted_at() }} is null
