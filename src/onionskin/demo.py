"""The demo: a three-agent support desk for two tenants, on scripted models, no services.

triage -> lookup (calls the sync `lookup_order` tool) -> answer, through tenant, logging and
timing middleware. Prints every event as it happens and a summary per agent.
"""

from __future__ import annotations

import json
import logging
import re

from rich.console import Console
from rich.logging import RichHandler

from onionskin._render import EventPrinter, summary_table
from onionskin.core.calls import ModelRequest
from onionskin.core.messages import ToolCallPart, ToolReturnPart
from onionskin.core.tenant import TenantContext
from onionskin.middleware import LoggingMiddleware, TenantMiddleware, TimingMiddleware
from onionskin.runtime._result import RunResult
from onionskin.runtime.agent import Agent
from onionskin.runtime.models.scripted import ScriptedModel, tool_call
from onionskin.runtime.orchestrator import Orchestrator
from onionskin.runtime.pipeline import Pipeline

ORDERS = {
    "A1234": {"status": "shipped", "carrier": "DHL", "eta": "2026-11-24"},
    "B5678": {"status": "delivered", "carrier": "UPS", "eta": "2026-11-17"},
}
TICKETS = [
    (
        TenantContext(tenant_id="acme", user_id="ada"),
        "Acme Outfitters",
        "Hi, where is my order A1234? It has been a week.",
    ),
    (
        TenantContext(tenant_id="globex", user_id="grace"),
        "Globex Hardware",
        "I was charged twice for order B5678, please help.",
    ),
]
# Prices like a small hosted model's, so the cost column shows real arithmetic.
PRICES = {"input_price_per_mtok": "0.15", "output_price_per_mtok": "0.60"}


def lookup_order(order_id: str) -> dict[str, str]:
    """Look an order up by its id (sync: onionskin runs it in a worker thread)."""
    return ORDERS.get(order_id.upper(), {"status": "unknown"})


def _triage(request: ModelRequest) -> str:
    text = request.messages[-1].text.lower()
    return "billing" if "charged" in text or "refund" in text else "order-status"


def _lookup(request: ModelRequest) -> str | ToolCallPart:
    last = request.messages[-1]
    if last.role == "tool":
        returned = [part for part in last.parts if isinstance(part, ToolReturnPart)]
        order = json.loads(returned[0].content)
        if order["status"] == "unknown":
            return "I could not find that order."
        return (
            f"The order is {order['status']} with {order['carrier']}, expected on {order['eta']}."
        )
    found = re.search(r"\b([A-Z]\d{4})\b", request.messages[0].text + " " + last.text)
    return tool_call("lookup_order", order_id=found.group(1) if found else "none")


def _answer(request: ModelRequest) -> str:
    system = request.messages[0].text
    facts = request.messages[-1].text
    if "billing" in system:
        return (
            "Sorry about the double charge! I have flagged it for a refund within "
            f"3 business days. {facts}"
        )
    return f"Thanks for your patience! {facts}"


def build_support_desk() -> Orchestrator:
    """The demo's pipeline and middleware."""
    triage = Agent(
        "triage",
        model=ScriptedModel(_triage, name="scripted-mini", **PRICES),
        instructions="Classify the customer's message for {company}: "
        "answer 'billing' or 'order-status'.",
    )
    lookup = Agent(
        "lookup",
        model=ScriptedModel(_lookup, name="scripted-mini", **PRICES),
        instructions="Find the order the customer of {company} asks about. "
        "The customer wrote: {input}",
        tools=[lookup_order],
    )
    answer = Agent(
        "answer",
        model=ScriptedModel(
            _answer, name="scripted-large", input_price_per_mtok="2.50", output_price_per_mtok="10"
        ),
        instructions="You are the support desk of {company}. The ticket was "
        "triaged as {triage}. Reply kindly using the facts given.",
    )
    pipeline = Pipeline([triage, lookup, answer], name="support-desk")
    return Orchestrator(
        pipeline,
        middleware=[TenantMiddleware(), LoggingMiddleware(), TimingMiddleware()],
    )


async def run_demo(console: Console) -> list[RunResult]:
    """Run both tickets, printing events and a summary table for each."""
    handler = RichHandler(
        console=console,
        show_time=False,
        show_path=False,
        show_level=False,
        markup=False,
        highlighter=None,
    )
    handler.setFormatter(logging.Formatter("    [log] %(message)s"))
    run_logger = logging.getLogger("onionskin.run")
    run_logger.addHandler(handler)
    run_logger.setLevel(logging.INFO)
    results = []
    try:
        orchestrator = build_support_desk()
        layers = " → ".join(type(item).__name__ for item in orchestrator.middleware)
        console.print(f"[bold]onionskin demo[/bold]: support desk, middleware {layers}")
        for tenant, company, message in TICKETS:
            console.rule(f"[bold]{company}[/bold]: {message}")
            result = await orchestrator.execute(
                message,
                context=tenant,
                state={"company": company},
                on_event=EventPrinter(console),
            )
            console.print(f"[bold]Answer:[/bold] {result.output}")
            console.print(summary_table(result, title=f"Summary for tenant {tenant.tenant_id}"))
            results.append(result)
    finally:
        run_logger.removeHandler(handler)
    return results
