{#- JSON objects (event_properties, subscriptions, definition) land as DuckDB JSON (target-duckdb) or
    PostgreSQL jsonb (target-postgres); a loader that writes them as text works too. -#}

{#- The text at a path of keys (keys may hold `$` and spaces: Klaviyo's `$value`, `Campaign Name`);
    null when a key is missing or the value is JSON null. -#}
{% macro json_text(column, keys) -%}
  {{ return(adapter.dispatch('json_text', 'tap_klaviyo')(column, keys)) }}
{%- endmacro %}

{% macro default__json_text(column, keys) -%}
  jsonb_extract_path_text(cast({{ column }} as jsonb){% for key in keys %}, '{{ key | replace("'", "''") }}'{% endfor %})
{%- endmacro %}

{% macro duckdb__json_text(column, keys) -%}
  json_extract_string({{ column }}, '$
  {%- for key in keys %}."{{ key | replace("'", "''") | replace('"', '\\"') }}"{% endfor %}')
{%- endmacro %}
