"""`pipelines/<name>.yaml`: agents run in order (`agents: [a, b]`), with a description."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from onionskin.project._agents import check_file_name
from onionskin.project._specs import load_spec
from onionskin.project._yaml import line_of
from onionskin.project.errors import ProjectError
from onionskin.project.spec import PipelineSpec


def load_pipelines(root: Path, agents: Collection[str]) -> dict[str, PipelineSpec]:
    """Load every `root/pipelines/*.yaml`, by pipeline name; the folder is optional.

    Raises:
        ProjectError: a file is invalid, names an unknown agent or one twice, or its name
            is an agent's name too (`pipeline(name)` accepts either, so it would be ambiguous).
    """
    pipelines: dict[str, PipelineSpec] = {}
    folder = root / "pipelines"
    if not folder.is_dir():
        return pipelines
    for path in sorted(folder.glob("*.yaml")):
        display = f"pipelines/{path.name}"
        name = check_file_name(display, path.stem)
        if name in agents:
            raise ProjectError(
                display,
                f"a pipeline cannot share its name with agents/{name}.yaml; rename one of them",
            )
        spec, node = load_spec(path, display, PipelineSpec)
        for index, agent in enumerate(spec.agents):
            problem = None
            if agent not in agents:
                known = ", ".join(sorted(agents)) or "none"
                problem = f"no agent named {agent!r} in agents/ (known: {known})"
            elif agent in spec.agents[:index]:
                problem = f"the agent {agent!r} is listed twice; a pipeline runs each agent once"
            if problem is not None:
                line = line_of(node, ["agents", index])
                raise ProjectError(display, problem, line=line, field=f"agents[{index}]")
        pipelines[name] = spec
    return pipelines
