"""`middleware/<agent>.py`: seed 002's `before(content, context)` and `after(response, context)`.

The file applies to `agents/<agent>.yaml` and to nothing else: in a pipeline each agent
gets its own file. `context` is the run's `RunContext.state` dict itself, so a value set in
`before()` fills `{var}` in the agent's instructions, is seen by tools through
`current_context().state`, and by `after()`. Before the hooks run it holds `run_id`,
`agent_name`, `tenant_id` (when the run has a tenant) and `timestamp` (ISO 8601, UTC, the
first time a file hook ran in the run); `after()` also gets `duration_ms` (the agent's
turn) and `token_usage` (`{"input_tokens": ..., "output_tokens": ...}` of the turn).

`StopProcessing` raised in a hook ends the run as completed with its response; any other
exception fails the run (for `before()`, the agent never runs). A hook returning None is an
error naming the file: the seed passes None on silently, which only hides the bug.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pydantic_core

from onionskin.core.calls import AgentCall, AgentResult
from onionskin.core.clock import SYSTEM_CLOCK, Clock
from onionskin.core.context import RunContext, current_context
from onionskin.project._content import content_dict, content_message
from onionskin.project._modules import load_module
from onionskin.project.errors import ProjectError
from onionskin.runtime.agent import check_agent_name

logger = logging.getLogger("onionskin.project")

# A hook takes (content or response, context) and returns the new value, sync or async.
Hook = Callable[[Any, dict[str, Any]], Any]


def _check_hook(hook: object, name: str, source: str) -> Hook | None:
    if hook is None:
        return None
    if not callable(hook):
        raise ProjectError(source, f"{name} must be a function, got {type(hook).__name__}")
    try:
        inspect.signature(hook).bind(None, None)
    except TypeError as error:
        first = "content" if name == "before" else "response"
        raise ProjectError(
            source, f"{name}() must take two arguments: ({first}, context)"
        ) from error
    except ValueError:  # pragma: no cover - builtins without a signature: trust them
        pass
    return hook


async def _call(hook: Hook, value: Any, state: dict[str, Any], name: str, source: str) -> Any:
    try:
        result = hook(value, state)
        # Checked per call, not by the hook's type: a decorated sync wrapper may return a
        # coroutine, and a file hook runs once per turn, so the check costs nothing.
        if inspect.isawaitable(result):
            result = await result
    except Exception as error:
        # The run fails with the hook's own exception, unchanged; the note says whose it is.
        error.add_note(f"raised by {name}() in {source}")
        raise
    return result


class FileMiddleware:
    """Seed 002's `middleware/<agent>.py`, as a middleware around that agent's turns only.

    Args:
        agent: the agent whose turns it wraps.
        before: `before(content, context) -> content`, sync or async.
        after: `after(response, context) -> response`, sync or async.
        source: the file's name in messages (`middleware/<agent>.py`).
        clock: where `timestamp` and `duration_ms` come from.
    """

    def __init__(
        self,
        agent: str,
        *,
        before: Callable[..., Any] | None = None,
        after: Callable[..., Any] | None = None,
        source: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.agent = check_agent_name(agent)
        self.source = source if source is not None else f"middleware/{agent}.py"
        self.before = _check_hook(before, "before", self.source)
        self.after = _check_hook(after, "after", self.source)
        if self.before is None and self.after is None:
            raise ProjectError(
                self.source, "defines neither before(content, context) nor after(response, context)"
            )
        self.clock = clock

    def _seed(self, ctx: RunContext) -> dict[str, Any]:
        state = ctx.state
        state["run_id"] = ctx.run_id
        state["agent_name"] = self.agent
        if ctx.tenant_id is not None:
            state["tenant_id"] = ctx.tenant_id
        if "timestamp" not in state:
            now = datetime.fromtimestamp(self.clock.time(), UTC)
            state["timestamp"] = now.isoformat()
        return state

    async def wrap_agent(
        self, call: AgentCall, next: Callable[[AgentCall], Awaitable[AgentResult]]
    ) -> AgentResult:
        """Run `before()`, the agent's turn, then `after()`; other agents pass straight on."""
        if call.agent_name != self.agent:
            return await next(call)
        ctx = current_context()
        state = self._seed(ctx)
        if self.before is not None:
            content = content_dict(call.content)
            content = await _call(self.before, content, state, "before", self.source)
            call = dataclasses.replace(call, content=content_message(content, self.source))
        if self.after is None:
            return await next(call)
        return await self._with_after(self.after, ctx, call, next)

    async def _with_after(
        self,
        after: Hook,
        ctx: RunContext,
        call: AgentCall,
        next: Callable[[AgentCall], Awaitable[AgentResult]],
    ) -> AgentResult:
        before = ctx.agent_stats.get(self.agent)
        tokens_in = 0 if before is None else before.usage.input_tokens
        tokens_out = 0 if before is None else before.usage.output_tokens
        started = self.clock.monotonic()
        result = await next(call)
        state = ctx.state
        state["duration_ms"] = (self.clock.monotonic() - started) * 1000.0
        stats = ctx.agent_stats.get(self.agent)
        state["token_usage"] = {
            "input_tokens": 0 if stats is None else stats.usage.input_tokens - tokens_in,
            "output_tokens": 0 if stats is None else stats.usage.output_tokens - tokens_out,
        }
        output = await _call(after, _as_text(result.output), state, "after", self.source)
        if output is None:
            raise ProjectError(
                self.source, "after() returned None; return the response (changed or not)"
            )
        return dataclasses.replace(result, output=output)

    def __repr__(self) -> str:
        hooks = [name for name in ("before", "after") if getattr(self, name) is not None]
        return f"FileMiddleware({self.agent!r}, source={self.source!r}, hooks={hooks})"


def _as_text(output: Any) -> str:
    # Any: an inner after_agent hook may have made the output something other than text.
    if isinstance(output, str):
        return output
    return pydantic_core.to_json(output, fallback=str).decode()


def load_file_middleware(
    root: Path, agents: Collection[str], *, clock: Clock = SYSTEM_CLOCK
) -> dict[str, FileMiddleware]:
    """Load `root/middleware/<agent>.py` for each of `agents`, by agent name.

    Files starting with `_` are helpers and skipped silently; a file matching no agent is
    ignored with a debug log on `onionskin.project` (seed 002).

    Raises:
        ProjectError: a file raised on import, or defines neither hook, or a hook is invalid.
    """
    found: dict[str, FileMiddleware] = {}
    folder = root / "middleware"
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        display = f"middleware/{path.name}"
        if path.stem not in agents:
            logger.debug("%s: no agents/%s.yaml, so it is ignored", display, path.stem)
            continue
        module = load_module(root, path, display)
        found[path.stem] = FileMiddleware(
            path.stem,
            before=getattr(module, "before", None),
            after=getattr(module, "after", None),
            source=display,
            clock=clock,
        )
    return found
