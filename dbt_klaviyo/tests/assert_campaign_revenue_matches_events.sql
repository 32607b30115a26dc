-- Each campaign's attributed orders and revenue are those of the conversion events credited to it.
with credited as (
    select campaign_id, count(*) as orders, coalesce(sum(revenue), 0) as revenue
    from {{ ref('klaviyo__events') }}
    where is_conversion and attribution_source in ('klaviyo', 'last_touch') and campaign_id is not null
    group by campaign_id
)

select c.campaign_id, c.attributed_orders, credited.orders, c.attributed_revenue, credited.revenue
from {{ ref('klaviyo__campaigns') }} as c
full outer join credited on credited.campaign_id = c.campaign_id
where coalesce(c.attributed_orders, -1) != coalesce(credited.orders, 0)
    or abs(coalesce(c.attributed_revenue, -1) - coalesce(credited.revenue, 0)) > 0.005
