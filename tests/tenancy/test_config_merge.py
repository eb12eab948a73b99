"""Config providers and prompt contributors: the request values, the merge and the statics."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from typing import Any

import pytest

from onionskin import ConfigError
from onionskin.tenancy.config import (
    DEFAULT_PRIORITY,
    BasePromptContributor,
    ConfigRequest,
    IConfigProvider,
    PromptContext,
    StaticConfigProvider,
    StaticPromptContributor,
    compose_prompt,
    merge_configs,
)


def context(tenant: str | None = "acme", **fields: Any) -> PromptContext:
    session = fields.pop("session_id", f"{tenant or ''}:run-1")
    return PromptContext(tenant_id=tenant, session_id=session, run_id="run-1", **fields)


# --- merge_configs ---------------------------------------------------------------------


def test_the_higher_priority_wins_per_key_whatever_the_order() -> None:
    low = {"model": "small", "region": "eu"}
    high = {"model": "large"}
    assert merge_configs([(0, low), (100, high)]) == {"model": "large", "region": "eu"}
    assert merge_configs([(100, high), (0, low)]) == {"model": "large", "region": "eu"}


def test_nested_mappings_merge_deeply() -> None:
    defaults = {"settings": {"temperature": 0.7, "max_tokens": 500}, "tags": ["a"]}
    tenant = {"settings": {"temperature": 0.1}, "tags": ["b"]}
    assert merge_configs([(0, defaults), (100, tenant)]) == {
        "settings": {"temperature": 0.1, "max_tokens": 500},
        "tags": ["b"],
    }


def test_equal_priorities_let_the_first_registered_win() -> None:
    first, second = {"model": "first", "a": 1}, {"model": "second", "b": 2}
    assert merge_configs([(5, first), (5, second)]) == {"model": "first", "a": 1, "b": 2}
    assert merge_configs([(5, second), (5, first)])["model"] == "second"


def test_a_mapping_replaces_a_scalar_and_none_overrides() -> None:
    merged = merge_configs([(0, {"settings": 3, "model": "m"}), (1, {"settings": {"x": 1}})])
    assert merged == {"settings": {"x": 1}, "model": "m"}
    assert merge_configs([(0, {"model": "m"}), (1, {"model": None})]) == {"model": None}


def test_the_merged_config_shares_nothing_with_its_inputs() -> None:
    layer = {"settings": {"stop": ["x"]}, "tags": ["a"]}
    merged = merge_configs([(0, layer)])
    merged["settings"]["stop"].append("y")
    merged["tags"].append("b")
    assert layer == {"settings": {"stop": ["x"]}, "tags": ["a"]}


def test_no_layers_merge_to_an_empty_config() -> None:
    assert merge_configs([]) == {}


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ([(0, ["not", "a", "dict"])], "config layer 0 must be a mapping"),
        ([(0, {}), (1, {1: "x"})], "config layer 1 must be a mapping with string keys"),
        ([(True, {})], "priority"),
        ([("high", {})], "priority"),
    ],
)
def test_bad_layers_are_refused(layers: list[tuple[Any, Any]], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        merge_configs(layers)


# --- compose_prompt --------------------------------------------------------------------


def test_contributions_come_highest_priority_first_and_empty_ones_are_skipped() -> None:
    prompt = compose_prompt([(10, "low"), (80, "\nTenant rules\n"), (50, "   "), (90, "")])
    assert prompt == "Tenant rules\n\nlow"


def test_equal_priority_contributions_keep_their_registration_order() -> None:
    assert compose_prompt([(1, "a"), (1, "b"), (2, "c")], separator="|") == "c|a|b"


def test_a_contribution_that_is_not_text_is_refused() -> None:
    with pytest.raises(ConfigError, match="prompt contribution 1 must be a str"):
        compose_prompt([(1, "a"), (2, None)])  # type: ignore[list-item]  # bad on purpose


# --- the request values ----------------------------------------------------------------


def test_a_config_request_is_the_session_id_as_seed_003_parses_it() -> None:
    request = ConfigRequest(context("acme", session_id="acme:session-123", user_id="u1"))
    assert request == "acme:session-123"
    assert isinstance(request, str)
    assert request.split(":")[0] == "acme"
    assert (request.tenant_id, request.session_id, request.run_id) == (
        "acme",
        "acme:session-123",
        "run-1",
    )
    assert request.user_id == "u1"
    assert request.get("agent") is None
    assert request.get("missing", "default") == "default"


def test_a_config_request_is_immutable_and_pickles() -> None:
    request = ConfigRequest(context("acme"))
    with pytest.raises(AttributeError, match="immutable"):
        request.context = context("other")
    copy = pickle.loads(pickle.dumps(request))
    assert copy == request
    assert copy.context == request.context


def test_a_prompt_context_reads_as_a_mapping() -> None:
    ctx = context("acme", agent="writer", metadata={"plan": "pro"})
    assert ctx.get("tenant_id") == "acme"
    assert ctx["agent"] == "writer"
    assert ctx["metadata"] == {"plan": "pro"}
    assert set(ctx) == {
        "tenant_id",
        "session_id",
        "run_id",
        "user_id",
        "workspace_id",
        "agent",
        "metadata",
    }
    assert len(ctx) == 7
    with pytest.raises(KeyError):
        ctx["password"]
    assert ctx.get("password") is None


# --- the statics and the seed names ----------------------------------------------------


async def test_a_static_provider_merges_the_tenant_over_the_common_config() -> None:
    config = {"model": "small", "settings": {"temperature": 0.5, "max_tokens": 100}}
    tenants = {"acme": {"settings": {"temperature": 0.0}}}
    provider = StaticConfigProvider(config, tenants=tenants, priority=7)
    assert provider.priority() == 7
    acme = provider.get_config(ConfigRequest(context("acme")))
    assert acme == {"model": "small", "settings": {"temperature": 0.0, "max_tokens": 100}}
    assert provider.get_config(ConfigRequest(context("globex"))) == config
    assert provider.get_config(ConfigRequest(context(None))) == config


def test_a_static_provider_keeps_a_snapshot() -> None:
    config: dict[str, Any] = {"settings": {"temperature": 0.5}}
    provider = StaticConfigProvider(config)
    config["settings"]["temperature"] = 2.0
    served = provider.get_config(ConfigRequest(context("acme")))
    served["settings"]["temperature"] = 3.0
    assert provider.get_config(ConfigRequest(context("acme"))) == {"settings": {"temperature": 0.5}}
    assert provider.priority() == 0


@pytest.mark.parametrize(
    "options",
    [
        {"config": ["model"]},
        {"config": {1: "x"}},
        {"tenants": {"acme": "not a dict"}},
        {"tenants": ["acme"]},
        {"priority": 1.5},
    ],
)
def test_a_static_provider_refuses_bad_values(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="StaticConfigProvider"):
        StaticConfigProvider(**options)


def test_a_static_contributor_serves_the_tenant_text_or_the_common_one() -> None:
    contributor = StaticPromptContributor("Be brief.", tenants={"acme": "Speak like a pirate."})
    assert contributor.priority() == DEFAULT_PRIORITY
    assert contributor.get_contribution(context("acme")) == "Speak like a pirate."
    assert contributor.get_contribution(context("globex")) == "Be brief."
    assert contributor.get_contribution(context(None)) == "Be brief."


@pytest.mark.parametrize(
    "options",
    [{"text": 3}, {"tenants": {"acme": None}}, {"tenants": {1: "x"}}, {"priority": False}],
)
def test_a_static_contributor_refuses_bad_values(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="StaticPromptContributor"):
        StaticPromptContributor(**options)


class SeedTenantConfigProvider(IConfigProvider):
    """Seed 003's provider, as written there (a dict stands in for the database)."""

    def __init__(self, db_connection: dict[str, dict[str, Any]]) -> None:
        self.db = db_connection

    def priority(self) -> int:
        return 100

    async def get_config(self, session_id: str) -> dict[str, Any]:
        tenant_id = session_id.split(":")[0]
        return self.db.get(tenant_id, {})


class SeedTenantPromptContributor(BasePromptContributor):
    async def get_contribution(self, context: PromptContext) -> str:
        tenant_id = context.get("tenant_id")
        return f"\nPrompt of {tenant_id}" if tenant_id else ""


async def test_seed_003_providers_and_contributors_work_as_written() -> None:
    provider = SeedTenantConfigProvider({"acme": {"model": "large"}})
    request = ConfigRequest(context("acme", session_id="acme:session-123"))
    assert await provider.get_config(request) == {"model": "large"}
    contributor = SeedTenantPromptContributor()
    assert contributor.priority() == DEFAULT_PRIORITY
    assert await contributor.get_contribution(context("acme")) == "\nPrompt of acme"
    assert await contributor.get_contribution(context(None)) == ""


def test_a_base_contributor_must_implement_get_contribution() -> None:
    class Incomplete(BasePromptContributor):
        pass

    with pytest.raises(TypeError, match="get_contribution"):
        Incomplete()  # type: ignore[abstract]  # the point


def test_the_mapping_protocol_is_the_one_from_collections() -> None:
    assert isinstance(context("acme"), Mapping)
