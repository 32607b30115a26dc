{#- The figures every campaign, flow and flow message gets from klaviyo__events (aggregates over the
    events of one group): message activity counts its own message events, orders and revenue the
    conversions credited to it (by Klaviyo or by the last touch). -#}
{% macro message_metrics() -%}
  {%- set kinds = [
      ('sends', 'unique_recipients', var('klaviyo_send_metrics')),
      ('opens', 'unique_opens', var('klaviyo_open_metrics')),
      ('clicks', 'unique_clicks', var('klaviyo_click_metrics')),
      ('bounces', none, var('klaviyo_bounce_metrics')),
      ('unsubscribes', none, var('klaviyo_unsubscribe_metrics')),
      ('spam_complaints', none, var('klaviyo_spam_metrics')),
  ] -%}
  {%- for total, uniques, metrics in kinds %}
    sum(case when attribution_source = 'message' and metric_name in {{ tap_klaviyo.sql_list(metrics) }}
        then 1 else 0 end) as {{ total }},
    {%- if uniques %}
    count(distinct case when attribution_source = 'message' and metric_name in {{ tap_klaviyo.sql_list(metrics) }}
        then profile_id end) as {{ uniques }},
    {%- endif %}
  {%- endfor %}
    sum(case when is_conversion and attribution_source in ('klaviyo', 'last_touch') then 1 else 0 end)
        as attributed_orders,
    count(distinct case when is_conversion and attribution_source in ('klaviyo', 'last_touch') then profile_id end)
        as attributed_customers,
    coalesce(sum(case when is_conversion and attribution_source in ('klaviyo', 'last_touch') then revenue end), 0)
        as attributed_revenue
{%- endmacro %}

{#- The message figures' column names, in order (for selecting them through a join). -#}
{% macro message_metric_columns() -%}
  {{ return(['sends', 'unique_recipients', 'opens', 'unique_opens', 'clicks', 'unique_clicks', 'bounces',
             'unsubscribes', 'spam_complaints', 'attributed_orders', 'attributed_customers', 'attributed_revenue']) }}
{%- endmacro %}

{#- Klaviyo's own figures from a values report, per `key` (rows are keyed by `row_keys` and the date): the report's totals rows over its timeframe
    (date null), or where the report is read per day, the sum of its days. Null columns when the report
    is not synced. -#}
{% macro report_columns() -%}
  {{ return([
      ('recipients', 'klaviyo_recipients'), ('delivered', 'klaviyo_delivered'),
      ('opens_unique', 'klaviyo_unique_opens'), ('clicks_unique', 'klaviyo_unique_clicks'),
      ('bounced', 'klaviyo_bounced'), ('unsubscribe_uniques', 'klaviyo_unsubscribes'),
      ('conversions', 'klaviyo_conversions'), ('conversion_value', 'klaviyo_conversion_value'),
  ]) }}
{%- endmacro %}

{% macro report_figures(report, key, row_keys) -%}
  {%- if tap_klaviyo.relation_exists(report) %}
    select
        {{ key }},
        {%- for column, name in tap_klaviyo.report_columns() %}
        coalesce(
            sum(case when {{ adapter.quote('date') }} is null then {{ column }} end),
            sum(case when {{ adapter.quote('date') }} is not null then {{ column }} end)
        ) as {{ name }},
        {%- endfor %}
        min({{ tap_klaviyo.to_timestamp('coalesce(timeframe_start, ' ~ adapter.quote('date') ~ ')') }})
            as klaviyo_report_start,
        max({{ tap_klaviyo.to_timestamp('coalesce(timeframe_end, ' ~ adapter.quote('date') ~ ')') }})
            as klaviyo_report_end
    from ({{ tap_klaviyo.latest_rows(report, row_keys + [adapter.quote('date')]) }}) as report_rows
    where {{ tap_klaviyo.deleted_at() }} is null
    group by {{ key }}
  {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as {{ key }},
        {%- for column, name in tap_klaviyo.report_columns() %}
        cast(null as {{ dbt.type_float() }}) as {{ name }},
        {%- endfor %}
        cast(null as {{ dbt.type_timestamp() }}) as klaviyo_report_start,
        cast(null as {{ dbt.type_timestamp() }}) as klaviyo_report_end
    where 1 = 0
  {%- endif %}
{%- endmacro %}
