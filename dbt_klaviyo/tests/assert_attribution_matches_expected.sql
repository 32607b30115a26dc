{{ config(enabled=var('klaviyo_expected_attributions') is not none) }}
-- Tests only: against the attributions the account is known to hold (the emulator's, loaded by the
-- test into the table named by klaviyo_expected_attributions): every event with one is credited by
-- Klaviyo to one of them, and no other event is.
{%- set expected = var('klaviyo_expected_attributions') %}
with expected as (
    select * from {{ expected }}
),

credited as (
    select * from {{ ref('klaviyo__events') }} where attribution_source = 'klaviyo'
)

select coalesce(c.event_id, x.event_id) as event_id, c.attributed_event_id, 'not credited as expected' as problem
from credited as c
full outer join (select distinct event_id from expected) as x on x.event_id = c.event_id
where c.event_id is null or x.event_id is null
union all
select c.event_id, c.attributed_event_id, 'credited to an attribution Klaviyo does not have'
from credited as c
where not exists (
    select 1 from expected as x
    where x.event_id = c.event_id
        and x.attributed_event_id = c.attributed_event_id
        and x.campaign_id is not distinct from c.campaign_id
        and x.campaign_message_id is not distinct from c.campaign_message_id
        and x.flow_id is not distinct from c.flow_id
        and x.flow_message_id is not distinct from c.flow_message_id
)
