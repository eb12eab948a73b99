"""The agent runtime: tools, agents, pipelines, the orchestrator and model adapters."""
