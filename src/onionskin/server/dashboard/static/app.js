// The dashboard: sign in, then charts, the run list and the run view, kept live by the
// analytics WebSocket. Plain ES modules, no build step; Chart.js is the vendored UMD file.

import {
  api,
  clearCredentials,
  credentials,
  describe,
  liveProtocols,
  liveUrl,
  loadCredentials,
  saveCredentials,
  thisPeriod,
} from "./api.js";
import { Charts } from "./charts.js";
import { $, debounce, el, say, shown } from "./dom.js";
import { LiveFeed } from "./live.js";
import { RunList } from "./runs.js";
import { RunView } from "./runview.js";

const REFRESH_MS = 250; // a run's end brings a burst of events: fetch totals once after it

let session = null; // the credentials in use, null when signed out
const charts = window.Chart ? new Charts(window.Chart) : null;
const call = (path, init) => api(session, path, init);
const runView = new RunView(call, () => refreshRunsSoon());
const runList = new RunList((runId) => runView.open(runId));
const feed = new LiveFeed(() => liveUrl(session), () => liveProtocols(session), {
  onEvents: receive,
  onOpen: () => refresh(),
  // An expired token, a revoked key: the page signs out rather than retrying forever.
  onRefused: (reason) => signOut(`The live feed was refused (${reason}): sign in again.`),
  onStatus: (state, text) => {
    const status = $("ws-status");
    status.dataset.state = state;
    status.textContent = text;
  },
});

function trouble(error) {
  if (error.status === 401 && session) {
    signOut("The server no longer accepts these credentials: sign in again.");
  } else {
    say($("notice"), error.message);
  }
}

async function refreshRuns() {
  const body = await call("/runs?limit=50");
  runList.merge(body.runs ?? []);
}

async function refreshCosts() {
  const query = `?period=${encodeURIComponent($("period").value || thisPeriod())}`;
  const [costs, budget] = await Promise.all([call(`/costs${query}`), call(`/budget${query}`)]);
  charts?.setCosts(costs);
  charts?.setBudget(budget);
}

function refresh() {
  say($("notice"), charts ? "" : "The charting library did not load: charts are off.");
  refreshRuns().catch(trouble);
  refreshCosts().catch(trouble);
}
const refreshRunsSoon = debounce(() => session && refreshRuns().catch(trouble), REFRESH_MS);
const refreshCostsSoon = debounce(() => session && refreshCosts().catch(trouble), REFRESH_MS);

/** A batch of analytics events from the WebSocket. */
function receive(events) {
  let runEnded = false;
  let spent = false;
  for (const event of events) {
    if (!event || typeof event !== "object") continue;
    if (event.type === "token_usage") {
      charts?.addTokens(event);
      spent = true;
    } else if (event.type === "tool_call") {
      charts?.addToolCall(event);
    } else if (event.type === "agent_finished" || event.type === "agent_failed") {
      runView.touched(event.run_id);
    }
    if (runList.apply(event) && event.type !== "run_started") {
      runEnded = true;
      runView.touched(event.run_id);
    }
  }
  charts?.update();
  runList.render();
  if (runEnded) refreshRunsSoon(); // checkpoint counts and last steps come from the API
  if (spent || runEnded) refreshCostsSoon();
}

async function signIn(given) {
  session = given;
  try {
    await refreshRuns(); // proves the credentials before anything is kept
  } catch (error) {
    session = null;
    throw error;
  }
  saveCredentials(given);
  $("login-form").hidden = true;
  $("dashboard").hidden = false;
  $("logout").hidden = false;
  $("who").textContent = describe(given);
  feed.start();
  refreshCosts().catch(trouble);
}

function signOut(message = "") {
  feed.stop();
  clearCredentials();
  session = null;
  runView.close();
  runList.clear();
  charts?.reset();
  $("dashboard").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  $("login-form").hidden = false;
  say($("login-error"), message);
}

function refused(error) {
  if (error.status === 401 || error.status === 403) {
    return `Those credentials were refused: ${error.message}`;
  }
  return error.message;
}

$("login-form").addEventListener("submit", async (submitted) => {
  submitted.preventDefault();
  const form = submitted.currentTarget;
  const button = $("login-submit");
  say($("login-error"), "");
  button.disabled = true;
  try {
    const { method, secret } = form.elements;
    await signIn(credentials(method.value, secret.value));
    secret.value = "";
  } catch (error) {
    say($("login-error"), refused(error));
  } finally {
    button.disabled = false;
  }
});

$("login-method").addEventListener("change", (changed) => {
  // An organization id is not a secret: let the user see what they type.
  $("login-secret").type = changed.target.value === "org_id" ? "text" : "password";
});

$("logout").addEventListener("click", () => signOut());
$("period").addEventListener("change", () => session && refreshCosts().catch(trouble));

$("run-form").addEventListener("submit", async (submitted) => {
  submitted.preventDefault();
  const form = submitted.currentTarget;
  const { pipeline, input } = form.elements;
  const name = pipeline.value.trim();
  const result = $("run-result");
  say($("run-error"), "");
  result.hidden = true;
  result.replaceChildren();
  if (!name) return say($("run-error"), "Name a pipeline (or agent) to run.");
  $("run-submit").disabled = true;
  try {
    const body = await call(`/pipelines/${encodeURIComponent(name)}/execute`, {
      method: "POST",
      body: { input: input.value },
    });
    result.replaceChildren(
      "Run ",
      el("code", { dataset: { testid: "run-result-id" } }, body.run_id),
      ` completed: ${body.usage?.total_tokens ?? 0} tokens, $${body.cost_usd}`,
      el("pre", { dataset: { testid: "run-result-output" } }, shown(body.output)),
    );
    result.hidden = false;
  } catch (error) {
    say($("run-error"), error.message);
  } finally {
    $("run-submit").disabled = false;
  }
});

function start() {
  $("period").value = thisPeriod();
  // ?org_id=acme opens the page signed in, in insecure-local mode (the server decides).
  const fromUrl = new URLSearchParams(location.search).get("org_id");
  let stored = loadCredentials();
  if (!stored && fromUrl) stored = credentials("org_id", fromUrl);
  if (!stored) return;
  signIn(stored).catch((error) => {
    if (error.status === 401 || error.status === 403) clearCredentials();
    say($("login-error"), refused(error));
  });
}

start();
