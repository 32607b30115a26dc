-- One row per flow message: its activity, the orders and revenue credited to it, and beside them
-- Klaviyo's own figures from the flow values report (where it is synced).
with flow_messages as (
    select * from {{ ref('stg_klaviyo__flow_message') }}
),

flows as (
    select flow_id, flow_name from {{ ref('stg_klaviyo__flow') }}
),

activity as (
    select
        flow_message_id,
        {{ tap_klaviyo.message_metrics() }}
    from {{ ref('klaviyo__events') }}
    where flow_message_id is not null
    group by flow_message_id
),

report as (
    {{ tap_klaviyo.report_figures(source('klaviyo', 'flow_values_report'), 'flow_message_id',
                                  ['flow_id', 'flow_message_id', 'send_channel']) }}
)

select
    fm.flow_message_id,
    fm.flow_id,
    f.flow_name,
    fm.message_name,
    fm.channel,
    fm.created_at,
    fm.updated_at,
    {%- for column in tap_klaviyo.message_metric_columns() %}
    coalesce(a.{{ column }}, 0) as {{ column }},
    {%- endfor %}
    {%- for _column, name in tap_klaviyo.report_columns() %}
    r.{{ name }},
    {%- endfor %}
    r.klaviyo_report_start,
    r.klaviyo_report_end
from flow_messages as fm
left join flows as f on f.flow_id = fm.flow_id
left join activity as a on a.flow_message_id = fm.flow_message_id
left join report as r on r.flow_message_id = fm.flow_message_id
