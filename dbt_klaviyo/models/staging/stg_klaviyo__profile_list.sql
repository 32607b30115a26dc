-- List memberships; a membership the loader marked deleted (a full read found it gone) was removed then.
with memberships as (
    {{ tap_klaviyo.latest_rows(source('klaviyo', 'profile_list'), ['list_id', 'profile_id']) }}
)

select
    list_id,
    profile_id,
    {{ tap_klaviyo.to_timestamp('joined_group_at') }} as joined_at,
    {{ tap_klaviyo.deleted_at() }} as removed_at
from memberships
