-- A last-touch credit is an unattributed conversion's touch of the same profile, before it and within
-- the channel's window, crediting that touch's own message.
{%- set email_hours = var('klaviyo_email_attribution_hours') | int %}
{%- set sms_hours = var('klaviyo_sms_attribution_hours') | int %}
select e.event_id, e.attributed_event_id, t.metric_name, e.occurred_at, t.occurred_at as touched_at
from {{ ref('klaviyo__events') }} as e
left join {{ ref('klaviyo__events') }} as t on t.event_id = e.attributed_event_id
where e.attribution_source = 'last_touch'
    and (
        not e.is_conversion
        or e.klaviyo_attribution_count != 0
        or t.event_id is null
        or t.profile_id != e.profile_id
        or t.occurred_at > e.occurred_at
        or t.attribution_source != 'message'
        or t.campaign_message_id is distinct from e.campaign_message_id
        or t.flow_message_id is distinct from e.flow_message_id
        or not (
            (t.metric_name in {{ tap_klaviyo.sql_list(var('klaviyo_email_touch_metrics')) }}
                and t.occurred_at >= {{ tap_klaviyo.add_hours(-email_hours, 'e.occurred_at') }})
            or (t.metric_name in {{ tap_klaviyo.sql_list(var('klaviyo_sms_touch_metrics')) }}
                and t.occurred_at >= {{ tap_klaviyo.add_hours(-sms_hours, 'e.occurred_at') }})
        )
    )
