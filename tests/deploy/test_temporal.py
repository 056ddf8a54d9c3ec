"""The Temporal cluster's setup: history shards, Helm values, the schema and namespace scripts, and the guide's commands."""

from __future__ import annotations

import re

import yaml

from stack.search_attributes import ALL_KEYS, cli_type_name
from tests.deploy.artifacts import DEPLOY, compose

# The engine declares its search attributes once (stack/search_attributes.py); deploy/ must
# register exactly those names and types on a real cluster.
SEARCH_ATTRIBUTES = {key.name: cli_type_name(key) for key in ALL_KEYS}

HISTORY_SHARDS = 512


def test_history_shards_are_512_everywhere() -> None:
    temporal = compose()["services"]["temporal"]["environment"]
    assert temporal["NUM_HISTORY_SHARDS"] == str(HISTORY_SHARDS)
    values = yaml.safe_load((DEPLOY / "helm" / "temporal-values.yaml").read_text())
    assert values["server"]["config"]["persistence"]["numHistoryShards"] == HISTORY_SHARDS


def test_helm_values_use_external_postgres_with_a_secret() -> None:
    values = yaml.safe_load((DEPLOY / "helm" / "temporal-values.yaml").read_text())
    stores = values["server"]["config"]["persistence"]["datastores"]
    assert set(stores) == {"default", "visibility"}
    for store in stores.values():
        sql = store["sql"]
        assert sql["pluginName"] == "postgres12"
        assert sql["existingSecret"] and "password" not in sql


def test_search_attributes_are_registered_with_their_types() -> None:
    script = (DEPLOY / "temporal" / "register-namespace.sh").read_text()
    registered = dict(re.findall(r"(\w+):(Text|Keyword|Int|Double|Bool|Datetime|KeywordList)\b", script))
    assert registered == SEARCH_ATTRIBUTES
    readme = (DEPLOY / "README.md").read_text()
    for name, kind in SEARCH_ATTRIBUTES.items():
        assert f"--name {name} --type {kind}" in readme, f"deploy/README.md does not register {name}"


def test_temporal_schema_setup_covers_both_databases() -> None:
    script = (DEPLOY / "temporal" / "setup-schema.sh").read_text()
    for step in ("create", "setup-schema -v 0.0", "update-schema"):
        assert step in script
    assert "for db in temporal temporal_visibility" in script
