from __future__ import annotations

import pickle

import pytest

from onionskin import (
    EmptyModelResponseError,
    GuardError,
    MaxStepsExceededError,
    OnionskinError,
    PromptVariableError,
    StopProcessing,
)
from onionskin.core import errors


def test_every_public_error_derives_from_one_root() -> None:
    classes = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, BaseException)
    ]
    assert StopProcessing in classes
    for cls in classes:
        if cls is not StopProcessing:
            assert issubclass(cls, OnionskinError), cls


def test_stop_processing_is_a_signal_outside_the_error_tree() -> None:
    assert not issubclass(StopProcessing, Exception)
    assert StopProcessing("done").response == "done"


@pytest.mark.parametrize(
    "error",
    [
        PromptVariableError("customer", "support"),
        MaxStepsExceededError("support", 3),
        EmptyModelResponseError("support", "gpt"),
        StopProcessing({"reason": "auth"}),
        GuardError("refused"),
    ],
)
def test_errors_survive_pickling(error: BaseException) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


def test_messages_say_what_was_wrong_and_what_to_do() -> None:
    message = str(PromptVariableError("customer", "support"))
    assert "'customer'" in message
    assert "'support'" in message
    assert "state" in message
    message = str(MaxStepsExceededError("support", 3))
    assert "3" in message
    assert "max_steps" in message
