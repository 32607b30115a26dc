-- Every event once, with its metric's name and the message it is about (message events name theirs in
-- event_properties: $message, and $flow for flow messages), and the revenue property as a number.
with events as (
    {{ tap_klaviyo.latest_rows(source('klaviyo', 'event'), ['id']) }}
),

metrics as (
    {{ tap_klaviyo.latest_rows(source('klaviyo', 'metric'), ['id']) }}
),

messages as (
    select * from {{ ref('stg_klaviyo__message') }}
),

campaigns as (
    select campaign_id from {{ ref('stg_klaviyo__campaign') }}
),

parsed as (
    select
        e.id as event_id,
        {{ tap_klaviyo.to_timestamp('e.' ~ adapter.quote('datetime')) }} as occurred_at,
        e.metric_id,
        coalesce(m.name, e.metric_name) as metric_name,
        e.profile_id,
        nullif({{ tap_klaviyo.json_text('e.event_properties', ['$message']) }}, '') as message_id,
        nullif({{ tap_klaviyo.json_text('e.event_properties', ['$flow']) }}, '') as flow_id_property,
        {{ tap_klaviyo.to_number(tap_klaviyo.json_text('e.event_properties', [var('klaviyo_revenue_property')])) }}
            as property_value,
        e.uuid as event_uuid,
        {{ tap_klaviyo.loaded_at('e') }} as loaded_at
    from events as e
    left join metrics as m on m.id = e.metric_id
    where {{ tap_klaviyo.deleted_at('e') }} is null
)

select
    p.event_id,
    p.occurred_at,
    p.metric_id,
    p.metric_name,
    p.profile_id,
    p.message_id,
    p.property_value,
    p.event_uuid,
    p.loaded_at,
    -- The campaign or flow message a message event is about: a known message first, then $flow, then a
    -- campaign id in $message (older campaigns' events name the campaign).
    case
        when msg.message_type = 'campaign' then msg.campaign_id
        when msg.message_id is null and p.flow_id_property is null then c.campaign_id
    end as campaign_id,
    case
        when msg.message_type = 'campaign' then msg.message_id
        when msg.message_id is null and p.flow_id_property is null and c.campaign_id is null then p.message_id
    end as campaign_message_id,
    case when msg.message_type = 'flow' then msg.flow_id else p.flow_id_property end as flow_id,
    case
        when msg.message_type = 'flow' then msg.message_id
        when msg.message_id is null and p.flow_id_property is not null then p.message_id
    end as flow_message_id
from parsed as p
left join messages as msg on msg.message_id = p.message_id
left join campaigns as c on c.campaign_id = p.message_id and msg.message_id is null
