"""The JSON bodies of the execute endpoints: what a client sends and what it gets back."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from onionskin.runtime._result import RunResult
from onionskin.server.tenancy import RESERVED_METADATA

_STRICT = ConfigDict(extra="forbid", strict=True)


class ExecuteRequest(BaseModel):
    """A run of a pipeline: its input, and optionally its state and request metadata."""

    model_config = _STRICT

    input: str | dict[str, Any] = Field(
        description=(
            'The user\'s message, or a content mapping: `{"message": ...}` (its other keys '
            'seed the run\'s state) or `{"parts": [{"text": ...}]}`.'
        )
    )
    state: dict[str, Any] = Field(
        default_factory=dict, description="Initial run state; its keys fill `{var}` in prompts."
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="Request metadata every middleware sees (`current_request_metadata()`).",
    )
    stream: bool | None = Field(
        default=None,
        description=(
            "Stream the run's events as Server-Sent Events; when absent, an "
            "`Accept: text/event-stream` header asks for the stream."
        ),
    )

    @field_validator("metadata")
    @classmethod
    def _no_reserved_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        # The server sets these from the credentials; a client's own would be a second,
        # unchecked tenant or user, so they are refused rather than silently overwritten.
        taken = sorted(RESERVED_METADATA & value.keys())
        if taken:
            raise ValueError(f"the server sets {', '.join(taken)} itself; leave them out")
        return value


class AdminExecuteRequest(ExecuteRequest):
    """An admin run (seed 000): like `ExecuteRequest`, naming the pipeline in the body."""

    pipeline: str = Field(description="The pipeline (or agent) to run.")


class UsageBody(BaseModel):
    """Tokens a run used."""

    input_tokens: int
    output_tokens: int
    cached_tokens: int
    total_tokens: int


class ExecuteResponse(BaseModel):
    """How a run ended, when it completed."""

    run_id: str
    pipeline: str
    tenant_id: str
    output: Any = Field(description="The run's answer (text, or JSON for structured output).")
    stopped: bool = Field(description="True when a middleware ended the run early.")
    usage: UsageBody
    cost_usd: str = Field(description="What the run cost, in USD, as an exact decimal string.")
    duration_ms: float

    @classmethod
    def of(cls, result: RunResult, *, output: Any) -> ExecuteResponse:
        """The body describing `result`; `output` already made JSON-ready (Any: JSON)."""
        usage = result.usage
        return cls(
            run_id=result.run_id,
            pipeline=result.pipeline_id,
            tenant_id=result.tenant_id or "",
            output=output,
            stopped=result.stopped,
            usage=UsageBody(
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cached_tokens=usage.cached_tokens,
                total_tokens=usage.total_tokens,
            ),
            cost_usd=str(result.cost_usd),
            duration_ms=result.duration_ms,
        )
