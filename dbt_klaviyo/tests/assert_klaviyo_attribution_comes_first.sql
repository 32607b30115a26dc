-- An event Klaviyo attributed is credited as Klaviyo said (to one of its attributions, the one whose
-- message event is the latest), never by the last-touch fallback.
with attributions as (
    select a.*, touch.occurred_at as touched_at
    from {{ ref('stg_klaviyo__event_attribution') }} as a
    left join {{ ref('stg_klaviyo__event') }} as touch on touch.event_id = a.attributed_event_id
),

latest as (
    select event_id, max(touched_at) as touched_at, count(*) as attributions
    from attributions
    group by event_id
)

select e.event_id, e.attribution_source, e.attributed_event_id
from {{ ref('klaviyo__events') }} as e
inner join latest as l on l.event_id = e.event_id
where e.attribution_source is distinct from 'klaviyo'
    or e.klaviyo_attribution_count != l.attributions
    or not exists (
        select 1 from attributions as a
        where a.event_id = e.event_id
            and a.attributed_event_id = e.attributed_event_id
            and a.campaign_message_id is not distinct from e.campaign_message_id
            and a.flow_message_id is not distinct from e.flow_message_id
            and a.touched_at is not distinct from l.touched_at
    )
