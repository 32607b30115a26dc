{#- Conversions of loaded text that must not fail on one odd value. -#}

{#- A number from text (a JSON value): null when it is not one. -#}
{% macro to_number(expression) -%}
  {{ return(adapter.dispatch('to_number', 'tap_klaviyo')(expression)) }}
{%- endmacro %}

{% macro default__to_number(expression) -%}
  case when {{ expression }} ~ '^\s*-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?\s*$'
    then cast({{ expression }} as double precision) end
{%- endmacro %}

{% macro duckdb__to_number(expression) -%}
  try_cast({{ expression }} as double)
{%- endmacro %}

{#- true / false from JSON text ('true', 'false'); null otherwise. -#}
{% macro to_boolean(expression) -%}
  case lower({{ expression }}) when 'true' then true when 'false' then false end
{%- endmacro %}

{#- A UTC timestamp without time zone: both loaders store timestamps so; DuckDB's target keeps
    _sdc_deleted_at as ISO text, which DuckDB converts to UTC. -#}
{% macro to_timestamp(expression) -%}
  cast({{ expression }} as {{ dbt.type_timestamp() }})
{%- endmacro %}

{#- A quoted SQL list of strings, for `in (...)`. -#}
{% macro sql_list(values) -%}
  ({% for value in values %}'{{ value | replace("'", "''") }}'{% if not loop.last %}, {% endif %}{% endfor %})
{%- endmacro %}

{#- Hours added to a timestamp. -#}
{% macro add_hours(hours, expression) -%}
  {{ dbt.dateadd('hour', hours, expression) }}
{%- endmacro %}

{#- One row per day from `first_day` to `last_day` (date expressions), as date_day. -#}
{% macro day_series(first_day, last_day) -%}
  {{ return(adapter.dispatch('day_series', 'tap_klaviyo')(first_day, last_day)) }}
{%- endmacro %}

{% macro default__day_series(first_day, last_day) -%}
  select cast(generate_series(
      cast({{ first_day }} as timestamp), cast({{ last_day }} as timestamp), interval '1 day'
  ) as date) as date_day
{%- endmacro %}

{% macro duckdb__day_series(first_day, last_day) -%}
  select cast(unnest(generate_series(
      cast({{ first_day }} as timestamp), cast({{ last_day }} as timestamp), interval '1 day'
  )) as date) as date_day
{%- endmacro %}
