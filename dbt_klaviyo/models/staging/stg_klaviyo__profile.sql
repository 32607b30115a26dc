-- Profiles with their current consent per channel, from subscriptions (JSON).
with profiles as (
    {{ tap_klaviyo.latest_rows(source('klaviyo', 'profile'), ['id']) }}
)

select
    id as profile_id,
    email,
    phone_number,
    first_name,
    last_name,
    {{ tap_klaviyo.to_timestamp('created') }} as created_at,
    {{ tap_klaviyo.to_timestamp('updated') }} as updated_at,
    {{ tap_klaviyo.json_text('subscriptions', ['email', 'marketing', 'consent']) }} as email_marketing_consent,
    {{ tap_klaviyo.to_boolean(tap_klaviyo.json_text('subscriptions', ['email', 'marketing', 'can_receive_email_marketing'])) }}
        as can_receive_email_marketing,
    {{ tap_klaviyo.json_text('subscriptions', ['sms', 'marketing', 'consent']) }} as sms_marketing_consent,
    {{ tap_klaviyo.to_boolean(tap_klaviyo.json_text('subscriptions', ['sms', 'marketing', 'can_receive_sms_marketing'])) }}
        as can_receive_sms_marketing,
    {{ tap_klaviyo.json_text('subscriptions', ['mobile_push', 'marketing', 'consent']) }} as push_marketing_consent,
    {{ tap_klaviyo.to_boolean(tap_klaviyo.json_text('subscriptions', ['mobile_push', 'marketing', 'can_receive_push_marketing'])) }}
        as can_receive_push_marketing
from profiles
where {{ tap_klaviyo.deleted_at() }} is null
