"""`ModelFallbackMiddleware`: when a model call fails, ask the next model in line.

The request first goes to its own model. If that fails with an error `fallback_on` accepts
(default `is_fallback_error`: a transient error, or any `ModelHTTPError`), the same request
goes to each configured model in order, as `dataclasses.replace(request, model=fallback)`,
until one answers. Another error propagates at once. If every model fails, the last error
is re-raised as it was raised, chained to nothing new.

Inside a run, each call appends a `FallbackRecord` to `context.guard_state["model_fallback"]`
saying which model answered (the response's `model_name`) and which failed before it.
Under a streaming run, text deltas a failing model already sent are not taken back.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from onionskin.core.calls import Model, ModelRequest, ModelResponse
from onionskin.core.context import current_context_or_none
from onionskin.core.errors import ConfigError, ModelHTTPError
from onionskin.middleware._transient import ErrorFilter, error_predicate, is_transient

logger = logging.getLogger("onionskin.guards")

GUARD_STATE_KEY = "model_fallback"
"""Where the fallback records of a run live in `RunContext.guard_state`."""


def is_fallback_error(error: BaseException) -> bool:
    """Whether another model may succeed where this one failed: transient or HTTP errors."""
    return is_transient(error) or isinstance(error, ModelHTTPError)


def _is_model(value: object) -> bool:
    return isinstance(getattr(value, "name", None), str) and callable(
        getattr(value, "request", None)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelFallbackConfig:
    """Which models to fall back to, in order, and on which errors."""

    models: tuple[Model, ...]
    """The fallback models, tried in order after the request's own model failed."""
    fallback_on: ErrorFilter = is_fallback_error
    """Errors that send the request on to the next model: a predicate or exception classes."""

    def __post_init__(self) -> None:
        models: object = self.models
        if isinstance(models, Sequence) and not isinstance(models, str):
            # A list from the caller or from YAML: keep the config immutable.
            object.__setattr__(self, "models", tuple(models))
        if not self.models or not all(_is_model(model) for model in self.models):
            raise ConfigError(
                "ModelFallbackConfig.models must be a non-empty sequence of models (objects "
                f"with a name and request()), got {models!r}"
            )
        error_predicate("ModelFallbackConfig", "fallback_on", self.fallback_on)


@dataclass(frozen=True, slots=True, kw_only=True)
class FallbackRecord:
    """Which model answered one model call, and which failed before it."""

    requested: str
    """The name of the model the request was made to."""
    answered_by: str
    """The answering response's `model_name`."""
    failed: tuple[str, ...] = ()
    """Names of the models that failed first, in the order they were tried."""


class ModelFallbackMiddleware:
    """Sends a failed model request to the next configured model, in order."""

    def __init__(
        self, config: ModelFallbackConfig | None = None, *, models: Sequence[Model] = ()
    ) -> None:
        """Take the fallback models from `config`, or from `models` with default errors."""
        if config is not None and not isinstance(config, ModelFallbackConfig):
            raise ConfigError(f"config must be a ModelFallbackConfig, got {config!r}")
        if config is not None and models:
            raise ConfigError("pass the models in a ModelFallbackConfig or as models=, not both")
        self.config = config or ModelFallbackConfig(models=tuple(models))
        self._falls_back = error_predicate(
            "ModelFallbackConfig", "fallback_on", self.config.fallback_on
        )

    async def wrap_model_call(
        self, request: ModelRequest, next: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        """Call the request's model, then each fallback in turn while they fail."""
        primary = request.model
        try:
            response = await next(request)
        except Exception as error:
            if not self._falls_back(error):
                raise
            self._log_failure(primary, error)
            failed = error
        else:
            # The common case, kept free of the fallback loop's lists and copies.
            return self._answered(primary, primary, response, ())
        # Outside the except block, so the fallbacks' errors get no implicit `__context__`.
        return await self._fall_back(request, next, failed)

    async def _fall_back(
        self,
        request: ModelRequest,
        next: Callable[[ModelRequest], Awaitable[ModelResponse]],
        last_error: Exception,
    ) -> ModelResponse:
        """Try each fallback model in turn, after the request's own model failed."""
        primary = request.model
        failed = [primary.name]
        for model in self.config.models:
            if model is primary:
                continue
            try:
                response = await next(replace(request, model=model))
            except Exception as error:
                if not self._falls_back(error):
                    raise
                last_error = error
                failed.append(model.name)
                self._log_failure(model, error)
                continue
            return self._answered(primary, model, response, tuple(failed))
        # Raised here, outside any except block, so no earlier error becomes its context.
        raise last_error

    @staticmethod
    def _log_failure(model: Model, error: Exception) -> None:
        logger.warning("model %r failed (%r); falling back", model.name, error)

    @staticmethod
    def _answered(
        primary: Model, model: Model, response: ModelResponse, failed: tuple[str, ...]
    ) -> ModelResponse:
        if not response.model_name:
            response = replace(response, model_name=model.name)
        ctx = current_context_or_none()
        if ctx is not None:
            record = FallbackRecord(
                requested=primary.name, answered_by=response.model_name, failed=failed
            )
            ctx.guard_state.setdefault(GUARD_STATE_KEY, []).append(record)
        return response
