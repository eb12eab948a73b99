// The run list: loaded from GET /runs, then kept current by run_started / run_completed /
// run_failed events from the WebSocket.

import { $, clock, el } from "./dom.js";

const MAX_RUNS = 50;

// The status a run-ending event means (a completed run that a middleware stopped early is
// "stopped", as GET /runs reports it).
function statusOf(event) {
  if (event.type === "run_started") return "running";
  if (event.type === "run_failed") return "failed";
  return event.data?.stopped ? "stopped" : "completed";
}

export class RunList {
  /** `onOpen(runId)` is called when a row is clicked. */
  constructor(onOpen) {
    this.onOpen = onOpen;
    this.runs = new Map();
  }

  /** Forget every run (signing out). */
  clear() {
    this.runs.clear();
    $("runs").dataset.loaded = "false";
    this.render();
  }

  /** Take the body of GET /runs; runs only known from events so far are kept. */
  merge(runs) {
    for (const run of runs) this.runs.set(run.run_id, { ...this.runs.get(run.run_id), ...run });
    $("runs").dataset.loaded = "true";
    this.render();
  }

  /** Apply a run event; returns true when it was one. */
  apply(event) {
    if (!["run_started", "run_completed", "run_failed"].includes(event.type) || !event.run_id) {
      return false;
    }
    const known = this.runs.get(event.run_id);
    const run = known ?? {
      run_id: event.run_id,
      pipeline_id: event.data?.pipeline_id ?? "",
      tenant_id: event.tenant_id,
      started_at: event.timestamp,
      checkpoints: null,
      last_step: null,
    };
    // A late run_started (after a reconnect, say) must not turn a finished run back.
    if (!(known && event.type === "run_started")) run.status = statusOf(event);
    run.updated_at = event.timestamp;
    this.runs.set(event.run_id, run);
    return true;
  }

  /** Redraw the table, newest first (ids are time-ordered, like started_at). */
  render() {
    const newest = (a, b) =>
      String(b.started_at).localeCompare(String(a.started_at)) ||
      String(b.run_id).localeCompare(String(a.run_id));
    const sorted = [...this.runs.values()].sort(newest);
    for (const dropped of sorted.slice(MAX_RUNS)) this.runs.delete(dropped.run_id);
    const rows = sorted.slice(0, MAX_RUNS).map((run) => {
      const row = el(
        "tr",
        { dataset: { testid: "run-row", runId: run.run_id, status: run.status }, tabindex: "0" },
        el("td", {}, el("code", {}, run.run_id)),
        el("td", {}, run.pipeline_id),
        el("td", {}, el("span", { class: `status ${run.status}` }, run.status)),
        el("td", {}, clock(run.started_at)),
        el("td", {}, run.checkpoints ?? ""),
        el("td", {}, run.last_step ?? ""),
      );
      // Known once GET /runs has listed the run (live events do not carry it).
      if (run.checkpoints !== null && run.checkpoints !== undefined) {
        row.dataset.checkpoints = run.checkpoints;
      }
      row.addEventListener("click", () => this.onOpen(run.run_id));
      row.addEventListener("keydown", (key) => key.key === "Enter" && this.onOpen(run.run_id));
      return row;
    });
    $("run-rows").replaceChildren(...rows);
    $("runs-empty").hidden = rows.length > 0;
    const pipelines = new Set(sorted.map((run) => run.pipeline_id).filter(Boolean));
    const options = [...pipelines].map((name) => el("option", { value: name }));
    document.getElementById("pipelines").replaceChildren(...options);
  }
}
