-- Members at the end of a list's last day are its memberships not marked removed, and never negative.
with last_days as (
    select list_id, members_at_end_of_day,
        row_number() over (partition by list_id order by date_day desc) as latest
    from {{ ref('klaviyo__list_daily') }}
),

current_members as (
    select m.list_id, count(*) as members
    from {{ ref('stg_klaviyo__profile_list') }} as m
    where m.removed_at is null and m.joined_at is not null
    group by m.list_id
)

select d.list_id, d.members_at_end_of_day, c.members
from last_days as d
left join current_members as c on c.list_id = d.list_id
where d.latest = 1 and d.members_at_end_of_day != coalesce(c.members, 0)
union all
select list_id, members_at_end_of_day, null
from {{ ref('klaviyo__list_daily') }}
where members_at_end_of_day < 0
