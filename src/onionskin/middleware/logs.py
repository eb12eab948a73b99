"""`LoggingMiddleware`: seed 000's example, built in: one log line per pipeline and agent."""

from __future__ import annotations

import logging

from onionskin.core.calls import AgentResult, PipelineResult
from onionskin.core.context import RunContext
from onionskin.core.middleware import BaseMiddleware


class LoggingMiddleware(BaseMiddleware):
    """Logs the start and end of the run and of each agent, and the run's error."""

    def __init__(self, *, logger: logging.Logger | None = None, level: int = logging.INFO) -> None:
        self._logger = logger or logging.getLogger("onionskin.run")
        self.level = level

    @property
    def logger(self) -> logging.Logger:
        """The logger lines go to (`onionskin.run` unless one was given)."""
        return self._logger

    def before_pipeline(self, context: RunContext) -> None:
        """Log the run's start."""
        self._logger.log(
            self.level,
            "pipeline %s started (run %s, tenant %s)",
            context.pipeline_id,
            context.run_id,
            context.tenant_id,
        )

    def before_agent(self, context: RunContext, agent_name: str) -> None:
        """Log an agent's start."""
        self._logger.log(self.level, "agent %s started", agent_name)

    def after_agent(self, context: RunContext, agent_name: str, result: AgentResult) -> None:
        """Log an agent's end, with its duration and cost."""
        self._logger.log(
            self.level,
            "agent %s completed in %.1f ms for $%s",
            agent_name,
            context.last_duration_ms,
            context.last_cost,
        )

    def after_pipeline(self, context: RunContext, result: PipelineResult) -> None:
        """Log the run's end, with its duration and cost."""
        self._logger.log(
            self.level,
            "pipeline %s completed in %.1f ms for $%s",
            context.pipeline_id,
            context.total_duration_ms,
            context.total_cost,
        )

    def on_error(self, context: RunContext, error: BaseException) -> None:
        """Log the run's error and the agent it happened in."""
        self._logger.error(
            "pipeline %s failed in agent %s: %r", context.pipeline_id, context.current_agent, error
        )
