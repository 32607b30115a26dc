"""CONTRIBUTING.md's "Adding a stream" recipe, as written: its class, taken from that file, syncs from the emulator."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
from singer_sdk import Stream
from typing_extensions import override

from klaviyo_emulator import Emulator, EmulatorConfig
from tap_klaviyo.reading.stream import KlaviyoStream
from tap_klaviyo.tap import TapKlaviyo
from tests.conftest import config_for
from tests.harness import ROOT, SyncResult, run_tap


def recipe_class() -> type[KlaviyoStream]:
    """The stream class of the recipe, from CONTRIBUTING.md itself."""
    guide = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    section = guide[guide.index("## Adding a stream") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    namespace: dict[str, Any] = {"KlaviyoStream": KlaviyoStream}
    exec(code.group(1), namespace)
    found = [
        v for v in namespace.values() if isinstance(v, type) and issubclass(v, KlaviyoStream) and v is not KlaviyoStream
    ]
    assert len(found) == 1
    return found[0]


def test_the_recipe_syncs_its_collection(monkeypatch: Any) -> None:
    stream_type = recipe_class()
    schema = stream_type.build_schema()  # what scripts/generate_schemas.py would write
    name, path = vars(stream_type)["name"], vars(stream_type)["path"]

    class TapWithTheRecipe(TapKlaviyo):
        @override
        def discover_streams(self) -> list[Stream]:
            return [*super().discover_streams(), stream_type(tap=self, schema=schema)]

    monkeypatch.setattr("tests.harness.TapKlaviyo", TapWithTheRecipe)
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0.0)) as emu:
        config = config_for(emu)
        catalog = TapWithTheRecipe(config=config, validate_config=False).catalog_dict
        for entry in catalog["streams"]:
            for item in entry["metadata"]:
                if item["breadcrumb"] == []:
                    item["metadata"]["selected"] = entry["tap_stream_id"] == name
        first: SyncResult = run_tap(config, catalog=catalog)
        expected = emu.account.expected_ids("template-universal-content")
        second = run_tap(config, state=first.state, catalog=catalog)
        sent = [r for r in emu.requests if r.path == path]
    rows = first.records[name]
    assert expected and {r["id"] for r in rows} == expected
    validator = jsonschema.Draft7Validator(first.schemas[name])
    assert all(not list(validator.iter_errors(r)) for r in rows)
    assert first.state["bookmarks"][name]["replication_key"] == "updated"
    # Incremental: the second run asks from the bookmark on (the filter the spec allows), and gets no more.
    assert "greater" in sent[-1].raw_query and len(second.records[name]) <= len(rows)
