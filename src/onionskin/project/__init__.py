"""Project folders (seed 002): agents in YAML, tools and middleware in Python files.

```python
project = load_project("my-agent-project")
result = await project.orchestrator("assistant").execute("Hello")
```
"""

from onionskin.project._agents import ModelResolver
from onionskin.project.errors import ProjectError, UnknownAgentError
from onionskin.project.file_middleware import FileMiddleware
from onionskin.project.project import Project, load_project
from onionskin.project.spec import AgentSpec, MiddlewareRef, PipelineSpec, ProjectSettings

__all__ = [
    "AgentSpec",
    "FileMiddleware",
    "MiddlewareRef",
    "ModelResolver",
    "PipelineSpec",
    "Project",
    "ProjectError",
    "ProjectSettings",
    "UnknownAgentError",
    "load_project",
]
