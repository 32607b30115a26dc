-- One row per profile: first and last activity, counts of key events, total and attributed revenue,
-- current consent per channel, and the lists it belongs to.
{%- set credited = "attribution_source in ('klaviyo', 'last_touch')" %}
with profiles as (
    select * from {{ ref('stg_klaviyo__profile') }}
),

activity as (
    select
        profile_id,
        min(occurred_at) as first_event_at,
        max(occurred_at) as last_event_at,
        count(*) as event_count,
        sum(case when is_conversion then 1 else 0 end) as order_count,
        min(case when is_conversion then occurred_at end) as first_order_at,
        max(case when is_conversion then occurred_at end) as last_order_at,
        sum(case when metric_name in {{ tap_klaviyo.sql_list(var('klaviyo_send_metrics')) }} then 1 else 0 end)
            as messages_received,
        sum(case when metric_name in {{ tap_klaviyo.sql_list(var('klaviyo_open_metrics')) }} then 1 else 0 end)
            as opens,
        sum(case when metric_name in {{ tap_klaviyo.sql_list(var('klaviyo_click_metrics')) }} then 1 else 0 end)
            as clicks,
        coalesce(sum(case when is_conversion then revenue end), 0) as total_revenue,
        coalesce(sum(case when is_conversion and {{ credited }} then revenue end), 0) as attributed_revenue
    from {{ ref('klaviyo__events') }}
    where profile_id is not null
    group by profile_id
),

lists as (
    select profile_id, count(*) as list_count
    from {{ ref('stg_klaviyo__profile_list') }}
    where removed_at is null
    group by profile_id
)

select
    p.profile_id,
    p.email,
    p.phone_number,
    p.first_name,
    p.last_name,
    p.created_at,
    p.updated_at,
    a.first_event_at,
    a.last_event_at,
    coalesce(a.event_count, 0) as event_count,
    coalesce(a.order_count, 0) as order_count,
    a.first_order_at,
    a.last_order_at,
    coalesce(a.messages_received, 0) as messages_received,
    coalesce(a.opens, 0) as opens,
    coalesce(a.clicks, 0) as clicks,
    coalesce(a.total_revenue, 0) as total_revenue,
    coalesce(a.attributed_revenue, 0) as attributed_revenue,
    p.email_marketing_consent,
    p.can_receive_email_marketing,
    p.sms_marketing_consent,
    p.can_receive_sms_marketing,
    p.push_marketing_consent,
    p.can_receive_push_marketing,
    coalesce(l.list_count, 0) as list_count
from profiles as p
left join activity as a on a.profile_id = p.profile_id
left join lists as l on l.profile_id = p.profile_id
