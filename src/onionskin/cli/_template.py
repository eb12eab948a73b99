"""The example project `onionskin init DIR` writes, file by file.

Kept as strings here rather than as package data: the files are small, and a template
folder under `src/` would be picked up by the tools that walk the package (mypy, ruff,
import checks) as if its files were onionskin's own modules. The tests run the project
`init` writes, so every file here is checked by use.
"""

from __future__ import annotations

from collections.abc import Mapping

AGENT = "assistant"
"""The agent the printed next step runs."""

_ASSISTANT = """\
# The assistant agent: agents/<name>.yaml, checked when the project loads.
#
# "scripted" answers without a model or an API key (it echoes what it was sent), so the
# project runs anywhere. For a real model, set OPENAI_API_KEY and write instead:
#   model: openai:gpt-4o-mini
# (or anthropic:claude-haiku-4-5 with ANTHROPIC_API_KEY). Without a key onionskin warns
# and the scripted stand-in answers.
model: scripted
description: Answers questions; counts words when asked how long a text is.
# {customer_name} and {timestamp} come from the run's state: middleware/assistant.py sets
# customer_name, and onionskin sets timestamp before that middleware runs.
instructions: |
  You are a friendly assistant helping {customer_name}.
  The current time is {timestamp}.
  When asked how long a text is, call the word_count tool.
tools:
  - word_count
# settings:             # model request settings
#   temperature: 0.2
"""

_REVIEWER = """\
# A second agent: pipelines/reviewed.yaml runs it after the assistant, on its answer.
model: scripted
description: Checks the assistant's answer before it goes out.
instructions: |
  Review the draft answer you are given: fix mistakes and keep it short.
"""

_PIPELINE = """\
# A pipeline: its agents run in order, each one's answer handed to the next.
# Run it as you run an agent: onionskin run . --agent reviewed "How long is this?"
description: The assistant answers, then the reviewer checks the answer.
agents:
  - assistant
  - reviewer
"""

_TOOL = '''\
"""Tools: every public function defined in tools/*.py is a tool named after the function.

The docstring tells the model what the tool does; the type hints are its arguments' schema.
"""

from __future__ import annotations


def word_count(text: str) -> int:
    """Count the words in a text.

    Args:
        text: the text to count.
    """
    return len(text.split())
'''

_MIDDLEWARE = '''\
"""Middleware for agents/assistant.yaml: before() and after() run around each of its turns.

`content` is the user's message, {"role": "user", "parts": [{"text": "..."}]}; `context`
is the run's shared state: a key set here fills {key} in the agent's instructions, and
tools and after() see it too. onionskin sets run_id, agent_name, timestamp (and tenant_id
when the run has one) before before() runs; after() also gets duration_ms and token_usage.
Raise StopProcessing(response) to answer without running the agent; any other exception
fails the run. Sync or async, both hooks must return what they were given (changed or not).
"""

from __future__ import annotations

from typing import Any


async def before(content: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """Tell the agent what time it is and whom it is helping."""
    content["parts"].insert(0, {"text": f"[Current time: {context['timestamp']}]"})
    # Fills {customer_name} in the instructions. A fork can set another value:
    # onionskin replay RUN --from CHECKPOINT --state customer_name=Ada
    context.setdefault("customer_name", "our customer")
    return content


async def after(response: str, context: dict[str, Any]) -> str:
    """Note what the turn used (kept in the run's checkpoints) and return the answer."""
    context["last_turn"] = {
        "duration_ms": round(context["duration_ms"]),
        "tokens": context["token_usage"],
    }
    return response
'''

_SETTINGS = """\
# Project settings; every one is optional.

# Where runs keep their checkpoints and cost ledger. Without it: ONIONSKIN_DATABASE_URL
# when set, else the SQLite file .onionskin/onionskin.db in this folder. A relative SQLite
# path is read from this folder.
# database_url: sqlite:///.onionskin/onionskin.db
# database_url: postgresql://onionskin@localhost/onionskin

# Settings of middleware plugins (entry points of the onionskin.middleware group), by
# plugin name; `onionskin plugins --project .` lists the installed ones.
# plugins:
#   scope_banner:
#     metadata_key: project_scope
"""

_README = """\
# {name}

An onionskin project: agents in YAML, tools and middleware in Python.

```
agents/assistant.yaml     the assistant: model, instructions with {{var}}s, a tool
agents/reviewer.yaml      a second agent
pipelines/reviewed.yaml   the assistant, then the reviewer
tools/text.py             the word_count tool
middleware/assistant.py   before() and after() around the assistant's turns
onionskin.yaml            project settings (database, plugins)
```

Its model is `scripted`: it answers without an API key by echoing what it was sent. For a
real model, set `OPENAI_API_KEY` and write `model: openai:gpt-4o-mini` in the agent's file.

## Try it (from this folder)

```
onionskin run . --agent assistant "Hello!"
onionskin run . --agent reviewed "How long is this sentence?"
onionskin runs --project .
onionskin checkpoints RUN --project .
onionskin replay RUN --from CHECKPOINT --project . --state customer_name=Ada
onionskin costs --project .
onionskin explain . --agent assistant
onionskin plugins --project .
```

Runs keep their checkpoints and costs in `.onionskin/onionskin.db` (see `onionskin.yaml`).
"""


def template_files(name: str) -> Mapping[str, str]:
    """The example project's files by relative path; `name` titles its README."""
    return {
        "agents/assistant.yaml": _ASSISTANT,
        "agents/reviewer.yaml": _REVIEWER,
        "pipelines/reviewed.yaml": _PIPELINE,
        "tools/text.py": _TOOL,
        "middleware/assistant.py": _MIDDLEWARE,
        "onionskin.yaml": _SETTINGS,
        "README.md": _README.format(name=name),
        ".gitignore": ".onionskin/\n",
    }
