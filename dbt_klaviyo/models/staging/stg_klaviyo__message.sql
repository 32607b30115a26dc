-- Campaign and flow messages in one lookup: which campaign or flow a message id belongs to.
with campaign_messages as (
    {{ tap_klaviyo.latest_rows(source('klaviyo', 'campaign_messages'), ['id']) }}
),

flow_messages as (
    {{ tap_klaviyo.latest_rows(source('klaviyo', 'flow_messages'), ['id']) }}
)

select
    id as message_id,
    'campaign' as message_type,
    campaign_id,
    cast(null as {{ dbt.type_string() }}) as flow_id
from campaign_messages
where {{ tap_klaviyo.deleted_at() }} is null

union all

select
    id as message_id,
    'flow' as message_type,
    cast(null as {{ dbt.type_string() }}) as campaign_id,
    flow_id
from flow_messages
where {{ tap_klaviyo.deleted_at() }} is null
