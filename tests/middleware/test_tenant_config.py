"""TenantConfigMiddleware: each tenant's model, settings and prompt, merged by priority."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from onionskin import (
    Agent,
    BudgetExceededError,
    ConfigError,
    Message,
    ModelRequest,
    ModelResponse,
    OnionskinError,
    Orchestrator,
    Pipeline,
    TenantContext,
    TenantError,
)
from onionskin.middleware.tenant import TenantMiddleware
from onionskin.middleware.tenant_config import (
    GUARD_STATE_KEY,
    TenantConfigMiddleware,
    current_tenant_config,
)
from onionskin.runtime.models.scripted import ScriptItem
from onionskin.stores._sql import SqlDatabase
from onionskin.stores.sql_tenant_config import SqlTenantConfigProvider
from onionskin.tenancy.config import (
    BasePromptContributor,
    ConfigRequest,
    PromptContext,
    StaticConfigProvider,
    StaticPromptContributor,
)
from onionskin.testing import FakeClock, ScriptedModel, tool_call
from tests.conftest import OrchestratorFactory, recorder

ACME = TenantContext(tenant_id="acme")
GLOBEX = TenantContext(tenant_id="globex")


class Models:
    """Scripted models that record the requests each of them got."""

    def __init__(self, *names: str) -> None:
        self.seen: dict[str, list[ModelRequest]] = {name: [] for name in names}
        self.models = {name: self._model(name) for name in names}

    def _model(self, name: str) -> ScriptedModel:
        def script(request: ModelRequest) -> ScriptItem:
            self.seen[name].append(request)
            return f"{name} answers"

        return ScriptedModel(script, name=name)

    def calls(self) -> dict[str, int]:
        return {name: len(requests) for name, requests in self.seen.items()}


def agent_on(models: Models, **options: Any) -> Agent:
    return Agent("assistant", model=models.models["default"], **options)


def system_text(request: ModelRequest) -> str:
    first = request.messages[0]
    return first.text if first.role == "system" else ""


async def test_two_tenants_on_one_orchestrator_get_their_own_model_settings_and_prompt() -> None:
    models = Models("default", "small", "large")
    providers = [
        StaticConfigProvider(
            tenants={
                "acme": {"model": "large", "settings": {"temperature": 0.1}},
                "globex": {"model": "small", "settings": {"temperature": 0.9}},
            }
        )
    ]
    contributors = [
        StaticPromptContributor(tenants={"acme": "You serve ACME.", "globex": "You serve Globex."})
    ]
    middleware = TenantConfigMiddleware(
        providers,
        contributors,
        models={"small": models.models["small"], "large": models.models["large"]},
    )
    orchestrator = Orchestrator(
        agent_on(models, instructions="Be helpful."), middleware=[middleware]
    )

    acme = await orchestrator.execute("hi", context=ACME)
    globex = await orchestrator.execute("hi", context=GLOBEX)

    assert (acme.output, globex.output) == ("large answers", "small answers")
    assert models.calls() == {"default": 0, "small": 1, "large": 1}
    [acme_request], [globex_request] = models.seen["large"], models.seen["small"]
    assert acme_request.settings == {"temperature": 0.1}
    assert globex_request.settings == {"temperature": 0.9}
    assert system_text(acme_request) == "Be helpful.\nYou serve ACME."
    assert system_text(globex_request) == "Be helpful.\nYou serve Globex."


async def test_a_run_without_config_keeps_the_agents_model_and_prompt(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    seen: list[ModelRequest] = []
    middleware = TenantConfigMiddleware([StaticConfigProvider(tenants={"acme": {"x": 1}})])
    orchestrator = orchestrator_factory(
        recorder(["ok"], seen), middleware=[middleware], instructions="Rules.", settings={"seed": 1}
    )
    result = await orchestrator.execute("hi", context=GLOBEX)
    assert result.output == "ok"
    assert [m.text for m in seen[0].messages] == ["Rules.", "hi"]
    assert seen[0].settings == {"seed": 1}
    assert seen[0].model.name == "scripted"


async def test_a_contribution_creates_a_system_message_when_the_agent_has_none(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    seen: list[ModelRequest] = []
    middleware = TenantConfigMiddleware(contributors=[StaticPromptContributor("Tenant rules.")])
    orchestrator = orchestrator_factory(recorder(["ok"], seen), middleware=[middleware])
    await orchestrator.execute("hi", context=ACME)
    assert [(m.role, m.text) for m in seen[0].messages] == [
        ("system", "Tenant rules."),
        ("user", "hi"),
    ]


async def test_tenant_settings_win_over_the_agents_and_the_agent_is_not_changed() -> None:
    models = Models("default")
    agent = agent_on(models, settings={"temperature": 0.7, "max_tokens": 100})
    config = {"settings": {"temperature": 0.0, "top_p": 0.5}}
    orchestrator = Orchestrator(
        agent, middleware=[TenantConfigMiddleware([StaticConfigProvider(config)])]
    )
    await orchestrator.execute("hi", context=ACME)
    assert models.seen["default"][0].settings == {
        "temperature": 0.0,
        "max_tokens": 100,
        "top_p": 0.5,
    }
    assert agent.settings == {"temperature": 0.7, "max_tokens": 100}
    assert agent.model is models.models["default"]


class RecordingContributor(BasePromptContributor):
    """An async contributor recording who asked."""

    def __init__(self, text: str, priority: int) -> None:
        self.text = text
        self._priority = priority
        self.asked: list[PromptContext] = []

    def priority(self) -> int:
        return self._priority

    async def get_contribution(self, context: PromptContext, /) -> str:
        self.asked.append(context)
        return f"{self.text} for {context.get('agent')}"


async def test_configs_and_prompts_merge_by_priority() -> None:
    models = Models("default", "small", "large")
    defaults = StaticConfigProvider(
        {"model": "small", "settings": {"temperature": 0.5, "max_tokens": 50}}, priority=0
    )
    tenant = StaticConfigProvider(
        tenants={"acme": {"model": "large", "settings": {"max_tokens": 900}}}, priority=100
    )
    footer, header = RecordingContributor("footer", 10), RecordingContributor("tenant", 80)
    middleware = TenantConfigMiddleware(
        # Registered low first: the priorities, not the order, decide.
        [defaults, tenant],
        [footer, header],
        models=models.models,
    )
    orchestrator = Orchestrator(agent_on(models, instructions="Base."), middleware=[middleware])
    await orchestrator.execute("hi", context=ACME)
    await orchestrator.execute("hi", context=GLOBEX)
    acme, globex = models.seen["large"][0], models.seen["small"][0]
    assert acme.settings == {"temperature": 0.5, "max_tokens": 900}
    assert globex.settings == {"temperature": 0.5, "max_tokens": 50}
    assert system_text(acme) == "Base.\ntenant for assistant\n\nfooter for assistant"


async def test_contributors_are_asked_once_per_agent_of_a_run() -> None:
    seen: list[ModelRequest] = []
    answers: list[ScriptItem] = [
        tool_call("lookup", q="a"),
        "first done",
        tool_call("lookup", q="b"),
        "done",
    ]
    model = ScriptedModel(recorder(answers, seen))

    def lookup(q: str) -> str:
        return q.upper()

    first = Agent("first", model=model, tools=[lookup])
    second = Agent("second", model=model, tools=[lookup])
    contributor = RecordingContributor("rules", 50)
    orchestrator = Orchestrator(
        Pipeline([first, second]), middleware=[TenantConfigMiddleware(contributors=[contributor])]
    )
    result = await orchestrator.execute("hi", context=ACME, metadata={"plan": "pro"})
    assert [context.agent for context in contributor.asked] == ["first", "second"]
    assert contributor.asked[0].metadata == {"plan": "pro"}
    assert contributor.asked[0].run_id == result.run_id
    assert [system_text(request) for request in seen] == [
        "rules for first",
        "rules for first",
        "rules for second",
        "rules for second",
    ]


async def test_the_cache_ttl_decides_when_a_runs_config_changes(tmp_path: Any) -> None:
    database = SqlDatabase(f"sqlite:///{tmp_path}/tenants.db")
    clock = FakeClock()
    worker = SqlTenantConfigProvider(database, clock=clock, ttl=30)
    admin = SqlTenantConfigProvider(database)  # another process, in effect
    models = Models("default", "small", "large")
    orchestrator = Orchestrator(
        agent_on(models), middleware=[TenantConfigMiddleware([worker], models=models.models)]
    )
    try:
        await admin.set_config("acme", {"model": "small"})
        assert (await orchestrator.execute("hi", context=ACME)).output == "small answers"
        await admin.set_config("acme", {"model": "large"})
        clock.advance(29)
        assert (await orchestrator.execute("hi", context=ACME)).output == "small answers"
        clock.advance(2)
        assert (await orchestrator.execute("hi", context=ACME)).output == "large answers"
    finally:
        await database.aclose()


class ListProvider:
    """A provider answering something that is not a config."""

    def priority(self) -> int:
        return 1

    def get_config(self, request: ConfigRequest, /) -> Any:
        return ["model", "large"]


BAD_CONFIGS: list[tuple[Any, str]] = [
    (ListProvider(), r"returned list for tenant 'acme'; get_config\(\) must return a dict"),
    (
        StaticConfigProvider({"model": "huge"}),
        r"config names model 'huge'.*\(known: 'large', 'small'\)",
    ),
    (StaticConfigProvider({"model": 3}), "config names model 3"),
    (StaticConfigProvider({"settings": ["hot"]}), "settings must be a mapping"),
    (StaticConfigProvider({"budget_limit_usd": -2}), "budget_limit_usd must be a number"),
    (StaticConfigProvider({"budget_limit_usd": "a lot"}), "budget_limit_usd must be a number"),
    (StaticConfigProvider({"budget_limit_usd": True}), "budget_limit_usd must be a number"),
]


@pytest.mark.parametrize(("provider", "message"), BAD_CONFIGS)
async def test_a_bad_config_fails_the_run_before_any_model_call(
    provider: Any, message: str
) -> None:
    models = Models("default", "small", "large")
    middleware = TenantConfigMiddleware(
        [provider], models={"small": models.models["small"], "large": models.models["large"]}
    )
    orchestrator = Orchestrator(agent_on(models), middleware=[middleware])
    with pytest.raises(ConfigError, match=message):
        await orchestrator.execute("hi", context=ACME)
    assert models.calls() == {"default": 0, "small": 0, "large": 0}


async def test_a_bad_contribution_fails_the_run_before_the_model_call() -> None:
    class Broken(BasePromptContributor):
        def get_contribution(self, context: PromptContext, /) -> Any:
            return 42

    models = Models("default")
    orchestrator = Orchestrator(
        agent_on(models), middleware=[TenantConfigMiddleware(contributors=[Broken()])]
    )
    with pytest.raises(ConfigError, match="must be a str, got 42"):
        await orchestrator.execute("hi", context=ACME)
    assert models.calls() == {"default": 0}


class SeedProvider:
    """Seed 003's provider: parses the tenant out of the session id."""

    def __init__(self, db: dict[str, dict[str, Any]]) -> None:
        self.db = db
        self.sessions: list[str] = []

    def priority(self) -> int:
        return 100

    async def get_config(self, session_id: str) -> dict[str, Any]:
        self.sessions.append(session_id)
        return self.db.get(session_id.split(":")[0], {})


async def test_a_seed_provider_parses_the_tenant_from_the_session_id() -> None:
    models = Models("default", "large")
    provider = SeedProvider({"acme": {"model": "large"}})
    middleware = TenantConfigMiddleware([provider], models=models.models)
    orchestrator = Orchestrator(agent_on(models), middleware=[middleware])
    named = await orchestrator.execute(
        "hi", context=ACME, metadata={"session_id": "acme:session-123"}
    )
    await orchestrator.execute("hi", context=ACME, metadata={"session_id": "s-9"})
    plain = await orchestrator.execute("hi", context=ACME)
    tenantless = await orchestrator.execute("hi")
    assert provider.sessions == [
        "acme:session-123",
        "acme:s-9",
        f"acme:{plain.run_id}",
        f":{tenantless.run_id}",
    ]
    assert named.output == "large answers"
    assert tenantless.output == "default answers"  # "" is never a tenant id


@pytest.mark.parametrize(
    ("tenant", "session", "message"),
    [
        (ACME, "globex:s1", "names another tenant than the run's"),
        (None, "acme:s1", "names another tenant than the run's"),
        (ACME, "", "session_id must be a non-empty str"),
        (ACME, 7, "session_id must be a non-empty str"),
    ],
)
async def test_a_session_id_for_another_tenant_is_refused(
    tenant: TenantContext | None, session: Any, message: str
) -> None:
    models = Models("default", "large")
    provider = SeedProvider({"acme": {"model": "large"}, "globex": {"model": "large"}})
    orchestrator = Orchestrator(
        agent_on(models), middleware=[TenantConfigMiddleware([provider], models=models.models)]
    )
    with pytest.raises(TenantError, match=message):
        await orchestrator.execute("hi", context=tenant, metadata={"session_id": session})
    assert provider.sessions == []
    assert models.calls() == {"default": 0, "large": 0}


async def test_the_tenant_from_request_metadata_selects_the_config() -> None:
    models = Models("default", "large")
    provider = StaticConfigProvider(tenants={"acme": {"model": "large"}})
    orchestrator = Orchestrator(
        agent_on(models),
        middleware=[TenantMiddleware(), TenantConfigMiddleware([provider], models=models.models)],
    )
    result = await orchestrator.execute("hi", metadata={"tenant_id": "acme"})
    assert result.output == "large answers"


async def test_the_merged_config_is_readable_anywhere_in_the_run() -> None:
    read: list[dict[str, Any]] = []

    def greeting() -> str:
        config = current_tenant_config()
        read.append(dict(config))
        return str(config["greeting"])

    seen: list[ModelRequest] = []
    agent = Agent(
        "assistant",
        model=ScriptedModel(recorder([tool_call("greeting"), "done"], seen)),
        tools=[greeting],
    )
    provider = StaticConfigProvider(
        {"greeting": "hello"}, tenants={"acme": {"greeting": "ahoy", "plan": "pro"}}
    )
    orchestrator = Orchestrator(agent, middleware=[TenantConfigMiddleware([provider])])
    await orchestrator.execute("hi", context=ACME)
    assert read == [{"greeting": "ahoy", "plan": "pro"}]
    with pytest.raises(OnionskinError, match="outside a run"):
        current_tenant_config()


async def test_the_runs_config_mapping_is_read_only_and_empty_without_the_middleware(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    views: list[Any] = []

    def remember(context: Any, request: ModelRequest) -> None:
        views.append(current_tenant_config())

    class Spy:
        before_model = staticmethod(remember)

    provider = StaticConfigProvider({"plan": "pro"})
    with_config = orchestrator_factory(
        ["ok"], middleware=[TenantConfigMiddleware([provider]), Spy()]
    )
    without = orchestrator_factory(["ok"], middleware=[Spy()])
    await with_config.execute("hi", context=ACME)
    await without.execute("hi", context=ACME)
    assert [dict(view) for view in views] == [{"plan": "pro"}, {}]
    with pytest.raises(TypeError):
        views[0]["plan"] = "free"


async def test_a_run_budget_refuses_the_call_that_would_start_over_it() -> None:
    seen: list[ModelRequest] = []
    answers: list[ScriptItem] = [tool_call("ping"), "never reached"]
    # 1000 USD per million tokens: the first call costs a few cents.
    model = ScriptedModel(recorder(answers, seen), input_price_per_mtok=1000)

    def ping() -> str:
        return "pong"

    agent = Agent("assistant", model=model, tools=[ping])
    provider = StaticConfigProvider({"budget_limit_usd": "0.001"})
    orchestrator = Orchestrator(agent, middleware=[TenantConfigMiddleware([provider])])
    with pytest.raises(BudgetExceededError) as refused:
        await orchestrator.execute("hi", context=ACME)
    assert len(seen) == 1
    assert refused.value.scope == "run"
    assert refused.value.limit == Decimal("0.001")
    assert refused.value.tenant_id == "acme"
    assert refused.value.spent is not None
    assert refused.value.spent > Decimal("0.001")


async def test_a_zero_budget_refuses_the_first_call(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    seen: list[ModelRequest] = []
    provider = StaticConfigProvider(tenants={"acme": {"budget_limit_usd": 0}})
    orchestrator = orchestrator_factory(
        recorder(["ok", "ok"], seen), middleware=[TenantConfigMiddleware([provider])]
    )
    with pytest.raises(BudgetExceededError, match="run budget of tenant 'acme'"):
        await orchestrator.execute("hi", context=ACME)
    assert seen == []
    assert (await orchestrator.execute("hi", context=GLOBEX)).output == "ok"


async def test_outside_a_run_a_model_call_passes_through() -> None:
    model = ScriptedModel(["direct"])
    middleware = TenantConfigMiddleware(contributors=[StaticPromptContributor("x")])
    request = ModelRequest(model=model, messages=[Message.user("hi")])

    async def call(request: ModelRequest) -> ModelResponse:
        assert request.messages == [Message.user("hi")]
        return await request.model.request(request)

    assert (await middleware.wrap_model_call(request, call)).message.text == "direct"


async def test_the_config_is_resolved_on_first_use_when_before_pipeline_did_not_run() -> None:
    models = Models("default", "large")
    middleware = TenantConfigMiddleware(
        [StaticConfigProvider({"model": "large"})], models=models.models
    )

    class ModelCallsOnly:
        """Registers only the model wrap: before_pipeline never runs."""

        async def wrap_model_call(
            self, request: ModelRequest, next: Callable[[ModelRequest], Any]
        ) -> ModelResponse:
            return await middleware.wrap_model_call(request, next)

    orchestrator = Orchestrator(agent_on(models), middleware=[ModelCallsOnly()])
    assert (await orchestrator.execute("hi", context=ACME)).output == "large answers"


class BadPriority(StaticConfigProvider):
    def priority(self) -> Any:
        return "high"


BAD_OPTIONS: list[tuple[Callable[[], object], str]] = [
    (lambda: TenantConfigMiddleware([object()]), "is not a config provider"),  # type: ignore[list-item]
    (
        lambda: TenantConfigMiddleware(contributors=[StaticConfigProvider()]),  # type: ignore[list-item]
        "is not a prompt contributor",
    ),
    (lambda: TenantConfigMiddleware([BadPriority()]), "priority\\(\\) must return an int"),
    (lambda: TenantConfigMiddleware(models={"x": "not a model"}), "models must map names"),  # type: ignore[dict-item]
    (lambda: TenantConfigMiddleware(models=["x"]), "models must map names"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("build", "message"), BAD_OPTIONS)
def test_bad_options_are_refused_at_construction(build: Callable[[], object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build()


def test_the_guard_state_key_is_documented() -> None:
    assert GUARD_STATE_KEY == "tenant_config"
