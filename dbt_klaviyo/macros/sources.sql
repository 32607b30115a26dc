{#- The loader's optional columns and tables. -#}

{#- The loaded-at column of a source table, or a null timestamp without one. -#}
{% macro loaded_at(alias=none) -%}
  {%- set column = var('klaviyo_loaded_at_column') -%}
  {%- if column -%}{{ tap_klaviyo.to_timestamp((alias ~ '.' if alias else '') ~ adapter.quote(column)) }}
  {%- else -%}cast(null as {{ dbt.type_timestamp() }}){%- endif -%}
{%- endmacro %}

{#- When the loader marked the row deleted (null: present). -#}
{% macro deleted_at(alias=none) -%}
  {%- set column = var('klaviyo_deleted_at_column') -%}
  {%- if column -%}{{ tap_klaviyo.to_timestamp((alias ~ '.' if alias else '') ~ adapter.quote(column)) }}
  {%- else -%}cast(null as {{ dbt.type_timestamp() }}){%- endif -%}
{%- endmacro %}

{#- Rows of a source, one per key: the latest loaded copy (append-only loaders keep every copy). -#}
{% macro latest_rows(relation, keys) -%}
  select * from (
    select src.*, row_number() over (
      partition by {% for key in keys %}src.{{ key }}{% if not loop.last %}, {% endif %}{% endfor %}
      order by {{ tap_klaviyo.loaded_at('src') }} desc
    ) as _tap_klaviyo_copy
    from {{ relation }} as src
  ) as copies
  where _tap_klaviyo_copy = 1
{%- endmacro %}

{#- Whether a relation exists (the values reports are synced only when selected); false at parse time. -#}
{% macro relation_exists(relation) -%}
  {%- if not execute -%}{{ return(false) }}{%- endif -%}
  {%- set found = adapter.get_relation(database=relation.database, schema=relation.schema, identifier=relation.identifier) -%}
  {{ return(found is not none) }}
{%- endmacro %}
