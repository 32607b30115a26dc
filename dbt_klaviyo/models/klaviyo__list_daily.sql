-- One row per list and day, from the list's creation (or first member) to today: members who joined,
-- members removed (memberships the loader marked deleted), and members at the end of the day.
with lists as (
    select * from {{ ref('stg_klaviyo__list') }}
),

memberships as (
    select
        m.list_id,
        cast(m.joined_at as date) as joined_on,
        cast(m.removed_at as date) as removed_on
    from {{ ref('stg_klaviyo__profile_list') }} as m
    inner join lists as l on l.list_id = m.list_id
),

changes as (
    select list_id, joined_on as date_day, 1 as joined, 0 as removed from memberships where joined_on is not null
    union all
    select list_id, removed_on as date_day, 0 as joined, 1 as removed from memberships where removed_on is not null
),

daily_changes as (
    select list_id, date_day, sum(joined) as members_joined, sum(removed) as members_removed
    from changes
    group by list_id, date_day
),

list_days as (
    select
        l.list_id,
        l.list_name,
        coalesce(
            least(cast(l.created_at as date), min(dc.date_day)), cast(l.created_at as date), min(dc.date_day)
        ) as first_day
    from lists as l
    left join daily_changes as dc on dc.list_id = l.list_id
    group by l.list_id, l.list_name, l.created_at
),

last_day as (
    {%- if var('klaviyo_list_daily_end_date') %}
    select cast('{{ var("klaviyo_list_daily_end_date") }}' as date) as date_day
    {%- else %}
    select greatest(current_date, coalesce(max(date_day), current_date)) as date_day from daily_changes
    {%- endif %}
),

days as (
    {{ tap_klaviyo.day_series(
        "(select min(first_day) from list_days)", "(select date_day from last_day)"
    ) }}
),

grid as (
    select ld.list_id, ld.list_name, d.date_day
    from list_days as ld
    inner join days as d on d.date_day >= ld.first_day
)

select
    {{ dbt.concat(['g.list_id', "':'", dbt.cast('g.date_day', dbt.type_string())]) }} as list_day_id,
    g.list_id,
    g.list_name,
    g.date_day,
    coalesce(dc.members_joined, 0) as members_joined,
    coalesce(dc.members_removed, 0) as members_removed,
    sum(coalesce(dc.members_joined, 0) - coalesce(dc.members_removed, 0)) over (
        partition by g.list_id order by g.date_day rows between unbounded preceding and current row
    ) as members_at_end_of_day
from grid as g
left join daily_changes as dc on dc.list_id = g.list_id and dc.date_day = g.date_day
