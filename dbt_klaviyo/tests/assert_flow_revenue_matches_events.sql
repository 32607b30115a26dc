-- Each flow's attributed revenue is that of the conversions credited to it, and the sum over its messages.
with credited as (
    select flow_id, count(*) as orders, coalesce(sum(revenue), 0) as revenue
    from {{ ref('klaviyo__events') }}
    where is_conversion and attribution_source in ('klaviyo', 'last_touch') and flow_id is not null
    group by flow_id
),

by_messages as (
    select flow_id, sum(attributed_orders) as orders, sum(attributed_revenue) as revenue
    from {{ ref('klaviyo__flow_messages') }}
    group by flow_id
)

select f.flow_id, f.attributed_revenue, credited.revenue as credited_revenue, m.revenue as messages_revenue
from {{ ref('klaviyo__flows') }} as f
full outer join credited on credited.flow_id = f.flow_id
left join by_messages as m on m.flow_id = coalesce(f.flow_id, credited.flow_id)
where coalesce(f.attributed_orders, -1) != coalesce(credited.orders, 0)
    or abs(coalesce(f.attributed_revenue, -1) - coalesce(credited.revenue, 0)) > 0.005
    or abs(coalesce(m.revenue, 0) - coalesce(credited.revenue, 0)) > 0.005
