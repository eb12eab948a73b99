"""`explain()`: the effective order of a stack, per call kind, as text or as data.

A middleware takes part in a call kind only if it has a hook for it, and declared
positions may move it away from where it was registered: reading the registration list
does not tell which layers a tool call crosses, in which order. This does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from onionskin.core.calls import CALL_KINDS, CallKind
from onionskin.core.chain import Entry


@dataclass(frozen=True, slots=True, kw_only=True)
class Layer:
    """One middleware as one call kind meets it."""

    name: str
    form: str
    """`wrap`, `before`, `after`, `before+after`, or `wrap+before+after` and so on."""
    mandatory: bool = False
    fail_open: bool = False
    position: str | None = None

    def describe(self) -> str:
        """`Name (form; flags)`."""
        flags = [self.form]
        if self.position:
            flags.append(self.position)
        if self.mandatory:
            flags.append("mandatory")
        if self.fail_open:
            flags.append("fail-open")
        return f"{self.name} ({'; '.join(flags)})"


@dataclass(frozen=True, slots=True, kw_only=True)
class StackExplanation:
    """The layers each call kind crosses, outermost first, and the on_error hooks."""

    kinds: Mapping[CallKind, tuple[Layer, ...]]
    on_error: tuple[str, ...]
    """Middleware whose `on_error` runs when a run fails, in the order they run."""

    def __str__(self) -> str:
        lines = []
        for kind in CALL_KINDS:
            layers = self.kinds[kind]
            lines.append(f"{kind} ({len(layers)} layer{'s' if len(layers) != 1 else ''}):")
            lines.extend(f"  {index}. {layer.describe()}" for index, layer in enumerate(layers, 1))
        if self.on_error:
            lines.append("on_error: " + ", ".join(self.on_error))
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """The explanation as JSON-ready data (Any: nested JSON values)."""
        return {
            "kinds": {
                kind: [
                    {
                        "name": layer.name,
                        "form": layer.form,
                        "mandatory": layer.mandatory,
                        "fail_open": layer.fail_open,
                        "position": layer.position,
                    }
                    for layer in layers
                ]
                for kind, layers in self.kinds.items()
            },
            "on_error": list(self.on_error),
        }


def _form(entry: Entry, kind: CallKind) -> str | None:
    part = entry.parts.get(kind)
    if part is None:
        return None
    forms = []
    if part.wrap is not None:
        forms.append("wrap")
    hooks = part.hooks
    if hooks is not None and hooks.before is not None:
        forms.append("before")
    if hooks is not None and hooks.after is not None:
        forms.append("after")
    return "+".join(forms) or None


def explain_entries(entries: Iterable[Entry]) -> StackExplanation:
    """Explain `entries` given in their effective order (outermost first)."""
    entries = tuple(entries)
    kinds: dict[CallKind, tuple[Layer, ...]] = {}
    for kind in CALL_KINDS:
        layers = []
        for entry in entries:
            form = _form(entry, kind)
            if form is not None:
                contract = entry.contract
                layers.append(
                    Layer(
                        name=entry.name,
                        form=form,
                        mandatory=contract.mandatory,
                        fail_open=contract.fail_open,
                        position=contract.position,
                    )
                )
        kinds[kind] = tuple(layers)
    on_error = tuple(entry.name for entry in reversed(entries) if entry.on_error is not None)
    return StackExplanation(kinds=kinds, on_error=on_error)
