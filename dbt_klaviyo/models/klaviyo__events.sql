{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}
{#- Every event, credited to a campaign or flow message: its own message for message events; Klaviyo's
    attribution (event_attribution) first for the others; for conversions Klaviyo did not attribute, the
    latest email / SMS touch of the same profile within the window before it. -#}
{%- set conversions = tap_klaviyo.sql_list(var('klaviyo_conversion_metrics')) -%}
{%- set email_touches = tap_klaviyo.sql_list(var('klaviyo_email_touch_metrics')) -%}
{%- set sms_touches = tap_klaviyo.sql_list(var('klaviyo_sms_touch_metrics')) -%}
{%- set all_touches = tap_klaviyo.sql_list(var('klaviyo_email_touch_metrics') + var('klaviyo_sms_touch_metrics')) -%}
{%- set email_hours = var('klaviyo_email_attribution_hours') | int -%}
{%- set sms_hours = var('klaviyo_sms_attribution_hours') | int -%}
{%- set reach = [email_hours, sms_hours] | max -%}
{%- set credit = ['campaign_id', 'campaign_message_id', 'flow_id', 'flow_message_id'] -%}

with events as (
    select * from {{ ref('stg_klaviyo__event') }}
),

attributions as (
    select * from {{ ref('stg_klaviyo__event_attribution') }}
),

messages as (
    select * from {{ ref('stg_klaviyo__message') }}
),

{% if is_incremental() %}
-- What this run re-derives: events near the newest one already derived, every event (or attribution)
-- loaded since the last run, and the conversions a newly loaded touch may now be the last touch of.
watermark as (
    select max(occurred_at) as newest_event, max(loaded_at) as newest_load from {{ this }}
),

changed as (
    select e.event_id, e.profile_id, e.occurred_at, e.metric_name
    from events as e
    cross join watermark as w
    where w.newest_event is null
        or e.occurred_at >= {{ tap_klaviyo.add_hours(-(var('klaviyo_lookback_hours') | int), 'w.newest_event') }}
        or e.loaded_at >= w.newest_load
),

batch_ids as (
    select event_id from changed
    union
    select a.event_id
    from attributions as a
    cross join watermark as w
    where a.loaded_at >= w.newest_load
    union
    select c.event_id
    from events as c
    inner join changed as t
        on t.profile_id = c.profile_id
        and c.occurred_at >= t.occurred_at
        and c.occurred_at <= {{ tap_klaviyo.add_hours(reach, 't.occurred_at') }}
    where t.metric_name in {{ all_touches }} and c.metric_name in {{ conversions }}
),

batch as (
    select * from events where event_id in (select event_id from batch_ids)
),
{% else %}
batch as (
    select * from events
),
{% endif %}

-- Klaviyo's attribution; of several, the one whose message event is the latest.
klaviyo_ranked as (
    select
        a.event_id,
        a.attributed_event_id,
        coalesce(a.campaign_id, msg.campaign_id) as campaign_id,
        a.campaign_message_id,
        coalesce(a.flow_id, fmsg.flow_id) as flow_id,
        a.flow_message_id,
        a.flow_message_variation_id,
        count(*) over (partition by a.event_id) as attribution_count,
        row_number() over (
            partition by a.event_id order by touch.occurred_at desc nulls last, a.attribution_id desc
        ) as attribution_rank
    from attributions as a
    inner join batch as b on b.event_id = a.event_id
    left join events as touch on touch.event_id = a.attributed_event_id
    left join messages as msg on msg.message_id = a.campaign_message_id and msg.message_type = 'campaign'
    left join messages as fmsg on fmsg.message_id = a.flow_message_id and fmsg.message_type = 'flow'
),

klaviyo_credit as (
    select * from klaviyo_ranked where attribution_rank = 1
),

unattributed_conversions as (
    select b.event_id, b.profile_id, b.occurred_at
    from batch as b
    where b.metric_name in {{ conversions }}
        and b.event_id not in (select event_id from klaviyo_credit)
),

touches as (
    select e.*
    from events as e
    where e.metric_name in {{ all_touches }}
        and (e.campaign_id is not null or e.campaign_message_id is not null or e.flow_message_id is not null)
        and e.occurred_at >= (
            select {{ tap_klaviyo.add_hours(-reach, 'min(occurred_at)') }} from unattributed_conversions
        )
),

last_touch_ranked as (
    select
        c.event_id,
        t.event_id as attributed_event_id,
        {% for column in credit %}t.{{ column }},{% endfor %}
        row_number() over (partition by c.event_id order by t.occurred_at desc, t.event_id desc) as touch_rank
    from unattributed_conversions as c
    inner join touches as t
        on t.profile_id = c.profile_id
        and t.occurred_at <= c.occurred_at
        and (
            (t.metric_name in {{ email_touches }}
                and t.occurred_at >= {{ tap_klaviyo.add_hours(-email_hours, 'c.occurred_at') }})
            or (t.metric_name in {{ sms_touches }}
                and t.occurred_at >= {{ tap_klaviyo.add_hours(-sms_hours, 'c.occurred_at') }})
        )
),

last_touch as (
    select * from last_touch_ranked where touch_rank = 1
),

profiles as (
    select profile_id, email from {{ ref('stg_klaviyo__profile') }}
)

select
    b.event_id,
    b.occurred_at,
    cast(b.occurred_at as date) as occurred_on,
    b.metric_id,
    b.metric_name,
    b.profile_id,
    p.email as profile_email,
    coalesce(b.metric_name in {{ conversions }}, false) as is_conversion,
    case when b.metric_name in {{ conversions }} then b.property_value end as revenue,
    case
        when k.event_id is not null then 'klaviyo'
        when lt.event_id is not null then 'last_touch'
        when b.campaign_id is not null or b.campaign_message_id is not null or b.flow_message_id is not null
            or b.flow_id is not null then 'message'
    end as attribution_source,
    {% for column in credit %}
    case
        when k.event_id is not null then k.{{ column }}
        when lt.event_id is not null then lt.{{ column }}
        else b.{{ column }}
    end as {{ column }},
    {% endfor %}
    k.flow_message_variation_id,
    coalesce(k.attributed_event_id, lt.attributed_event_id) as attributed_event_id,
    coalesce(k.attribution_count, 0) as klaviyo_attribution_count,
    b.event_uuid,
    b.loaded_at
from batch as b
left join klaviyo_credit as k on k.event_id = b.event_id
left join last_touch as lt on lt.event_id = b.event_id
left join profiles as p on p.profile_id = b.profile_id
