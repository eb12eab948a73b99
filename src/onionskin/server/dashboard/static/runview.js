// One run's timeline of checkpoints: inspect a step's state and messages, replay from it, or
// fork it with an edited state (POST /runs/{id}/replay).

import { $, clock, el, say, shown } from "./dom.js";

const path = (runId, rest = "") => `/runs/${encodeURIComponent(runId)}${rest}`;

export class RunView {
  /** `call(path, init)` calls the API; `onReplayed(result)` hears of each new run. */
  constructor(call, onReplayed) {
    this.call = call;
    this.onReplayed = onReplayed;
    this.runId = null;
    this.selected = null;
    $("run-view-close").addEventListener("click", () => this.close());
    $("replay").addEventListener("click", () => this.replay(null));
    $("fork-open").addEventListener("click", () => {
      $("fork").hidden = false;
      $("fork-state").focus();
    });
    $("fork-submit").addEventListener("click", () => this.fork());
  }

  close() {
    this.runId = null;
    $("run-view").hidden = true;
  }

  /** Show run `runId`'s checkpoints (again, when it is already open: it may have grown). */
  async open(runId) {
    const again = this.runId === runId;
    this.runId = runId;
    $("run-view").hidden = false;
    $("run-view-id").textContent = runId;
    if (!again) {
      $("inspect").hidden = true;
      say($("replay-error"), "");
    }
    let body;
    try {
      body = await this.call(path(runId, "/checkpoints"));
    } catch (error) {
      $("timeline").replaceChildren(el("li", { class: "error" }, error.message));
      return;
    }
    if (this.runId !== runId) return; // another run was opened meanwhile
    const checkpoints = body.checkpoints ?? [];
    $("timeline").replaceChildren(...checkpoints.map((checkpoint) => this.step(checkpoint)));
    const keep = again && checkpoints.find((c) => c.checkpoint_id === this.selected?.checkpoint_id);
    if (keep) this.inspect(keep);
  }

  /** Refresh the open run when an event concerns it. */
  touched(runId) {
    if (runId && runId === this.runId) this.open(runId);
  }

  step(checkpoint) {
    const button = el(
      "button",
      { type: "button", dataset: { testid: "step", checkpointId: checkpoint.checkpoint_id } },
      el("strong", {}, `#${checkpoint.step} ${checkpoint.kind}`),
      ` ${checkpoint.agent ?? ""} · ${clock(checkpoint.created_at)}`,
      el("span", { class: "summary" }, checkpoint.summary ?? ""),
    );
    button.addEventListener("click", () => this.inspect(checkpoint));
    return el("li", {}, button);
  }

  inspect(checkpoint) {
    this.selected = checkpoint;
    for (const node of document.querySelectorAll('[data-testid="step"]')) {
      node.classList.toggle("selected", node.dataset.checkpointId === checkpoint.checkpoint_id);
    }
    $("inspect").hidden = false;
    $("inspect-step").textContent = `${checkpoint.step} (${checkpoint.kind})`;
    const state = JSON.stringify(checkpoint.state ?? {}, null, 2);
    $("inspect-state").textContent = state;
    $("inspect-messages").replaceChildren(
      ...(checkpoint.messages ?? []).map((message) =>
        el(
          "li",
          { dataset: { testid: "message" } },
          el("strong", {}, `${message.role}: `),
          message.text ?? "",
        ),
      ),
    );
    $("fork-state").value = state;
    $("fork").hidden = true;
    say($("replay-error"), "");
  }

  /** Fork with the state typed in the editor; anything but a JSON object is refused here. */
  fork() {
    let state;
    try {
      state = JSON.parse($("fork-state").value);
    } catch (error) {
      say($("replay-error"), `The state is not valid JSON: ${error.message}`);
      return;
    }
    if (state === null || typeof state !== "object" || Array.isArray(state)) {
      say($("replay-error"), "The state must be a JSON object, like {\"topic\": \"onions\"}.");
      return;
    }
    this.replay(state);
  }

  async replay(state) {
    const checkpoint = this.selected;
    if (!checkpoint || !this.runId) return;
    say($("replay-error"), "");
    const result = $("replay-result");
    result.hidden = true;
    result.replaceChildren();
    let body;
    try {
      body = await this.call(path(this.runId, "/replay"), {
        method: "POST",
        body: { checkpoint_id: checkpoint.checkpoint_id, state },
      });
    } catch (error) {
      say($("replay-error"), error.message);
      return;
    }
    const open = el("button", { type: "button", dataset: { testid: "replay-open" } }, "open it");
    open.addEventListener("click", () => this.open(body.run_id));
    result.replaceChildren(
      `${state ? "Forked" : "Replayed"} as run `,
      el("code", { dataset: { testid: "replay-run-id" } }, body.run_id ?? "?"),
      " ",
      open,
      el("pre", {}, shown(body.output)),
    );
    result.hidden = false;
    this.onReplayed(body);
  }
}
