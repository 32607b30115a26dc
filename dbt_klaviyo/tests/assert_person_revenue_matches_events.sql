-- Each person's total and attributed revenue are the sums over their conversion events, and no
-- conversion revenue is lost: the total over persons is the total over events of known profiles.
with by_profile as (
    select
        profile_id,
        coalesce(sum(revenue), 0) as total_revenue,
        coalesce(sum(case when attribution_source in ('klaviyo', 'last_touch') then revenue end), 0)
            as attributed_revenue
    from {{ ref('klaviyo__events') }}
    where is_conversion
    group by profile_id
)

select p.profile_id, p.total_revenue, e.total_revenue as events_total, p.attributed_revenue
from {{ ref('klaviyo__persons') }} as p
left join by_profile as e on e.profile_id = p.profile_id
where abs(p.total_revenue - coalesce(e.total_revenue, 0)) > 0.005
    or abs(p.attributed_revenue - coalesce(e.attributed_revenue, 0)) > 0.005
    or p.attributed_revenue > p.total_revenue + 0.005
