-- One row per flow: the activity of its messages, the orders and revenue credited to them, and beside
-- them Klaviyo's own figures from the flow values report (where it is synced).
with flows as (
    select * from {{ ref('stg_klaviyo__flow') }}
),

messages as (
    select flow_id, count(*) as message_count
    from {{ ref('stg_klaviyo__flow_message') }}
    group by flow_id
),

activity as (
    select
        flow_id,
        {{ tap_klaviyo.message_metrics() }}
    from {{ ref('klaviyo__events') }}
    where flow_id is not null
    group by flow_id
),

report as (
    {{ tap_klaviyo.report_figures(source('klaviyo', 'flow_values_report'), 'flow_id',
                                  ['flow_id', 'flow_message_id', 'send_channel']) }}
)

select
    f.flow_id,
    f.flow_name,
    f.status,
    f.archived,
    f.trigger_type,
    f.created_at,
    f.updated_at,
    coalesce(m.message_count, 0) as message_count,
    {%- for column in tap_klaviyo.message_metric_columns() %}
    coalesce(a.{{ column }}, 0) as {{ column }},
    {%- endfor %}
    {%- for _column, name in tap_klaviyo.report_columns() %}
    r.{{ name }},
    {%- endfor %}
    r.klaviyo_report_start,
    r.klaviyo_report_end
from flows as f
left join messages as m on m.flow_id = f.flow_id
left join activity as a on a.flow_id = f.flow_id
left join report as r on r.flow_id = f.flow_id
