"""`onionskin explain DIR --agent NAME`: the layers a run of NAME crosses, per call kind."""

from __future__ import annotations

from onionskin.cli._errors import clear_errors
from onionskin.cli._logs import warnings_as_lines
from onionskin.cli._options import JsonOption
from onionskin.cli._output import console, emit_json, say
from onionskin.cli._project_stack import (
    ProjectStores,
    build_orchestrator,
    check_name,
    open_project,
)
from onionskin.cli._run import AgentOption, ProjectArgument
from onionskin.stores.checkpoints import MemoryCheckpointStore
from onionskin.stores.ledger import MemoryCostLedger


def explain(project: ProjectArgument, agent: AgentOption, as_json: JsonOption = False) -> None:
    """Show the middleware `onionskin run` puts around NAME, per call kind, outermost first.

    Each layer shows its form (wrap, before, after) and declared position; `on_error` lists
    the hooks that run when a run fails, in the order they run.
    """
    with clear_errors(), warnings_as_lines():
        loaded = open_project(project)
        name = check_name(loaded, agent)
        # The same stack `run` builds, on memory stores: explaining opens no database, and
        # the layers are the same middleware whichever store they write to.
        stores = ProjectStores(checkpoints=MemoryCheckpointStore(), ledger=MemoryCostLedger())
        explanation = build_orchestrator(loaded, name, stores).explain()
    if as_json:
        emit_json(explanation.as_dict())
        return
    out = console()
    say(out, f"The middleware of {name!r} in {loaded.path}, outermost first:")
    say(out, str(explanation))
