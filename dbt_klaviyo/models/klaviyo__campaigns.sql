-- One row per campaign: its message activity, the orders and revenue credited to it, and beside them
-- Klaviyo's own figures from the campaign values report (where it is synced).
with campaigns as (
    select * from {{ ref('stg_klaviyo__campaign') }}
),

messages as (
    select campaign_id, count(*) as message_count
    from {{ ref('stg_klaviyo__message') }}
    where message_type = 'campaign'
    group by campaign_id
),

activity as (
    select
        campaign_id,
        {{ tap_klaviyo.message_metrics() }}
    from {{ ref('klaviyo__events') }}
    where campaign_id is not null
    group by campaign_id
),

report as (
    {{ tap_klaviyo.report_figures(source('klaviyo', 'campaign_values_report'), 'campaign_id',
                                  ['campaign_id', 'campaign_message_id', 'send_channel']) }}
)

select
    c.campaign_id,
    c.campaign_name,
    c.channel,
    c.status,
    c.archived,
    c.created_at,
    c.scheduled_at,
    c.send_time,
    c.updated_at,
    coalesce(m.message_count, 0) as message_count,
    {%- for column in tap_klaviyo.message_metric_columns() %}
    coalesce(a.{{ column }}, 0) as {{ column }},
    {%- endfor %}
    {%- for _column, name in tap_klaviyo.report_columns() %}
    r.{{ name }},
    {%- endfor %}
    r.klaviyo_report_start,
    r.klaviyo_report_end
from campaigns as c
left join messages as m on m.campaign_id = c.campaign_id
left join activity as a on a.campaign_id = c.campaign_id
left join report as r on r.campaign_id = c.campaign_id
