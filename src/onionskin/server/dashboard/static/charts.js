// The five charts (Chart.js, vendored): tokens and tool calls fed by live events (seed 003
// recipe 7), costs and the budget gauge from /costs and /budget. Amounts are exact decimal
// strings: the bars are drawn from Number(), the text always shows the string itself.

import { $, clock, el } from "./dom.js";

const MAX_POINTS = 120; // live points kept on the token chart (seed 003: aggregate old data)
const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1"];
const DANGER = "#c53030"; // the gauge from 80% of the budget on
const EMPTY = "#d9dee5";

function exactLabel(context) {
  const exact = String(context.dataset.exact?.[context.dataIndex] ?? context.raw);
  return /^-?\d/.test(exact) ? `${context.label}: $${exact}` : `${context.label}: ${exact}`;
}

function lineChart(Chart, id, label) {
  return new Chart(document.getElementById(id), {
    type: "line",
    data: { labels: [], datasets: [{ label, data: [], borderColor: PALETTE[0], tension: 0.2 }] },
    options: { scales: { y: { beginAtZero: true } }, plugins: { legend: { display: false } } },
  });
}

function barChart(Chart, id, label, options = {}) {
  return new Chart(document.getElementById(id), {
    type: "bar",
    data: { labels: [], datasets: [{ label, data: [], backgroundColor: PALETTE }] },
    options: { plugins: { legend: { display: false } }, ...options },
  });
}

function moneyOptions(extra = {}) {
  const tooltip = { callbacks: { label: exactLabel } };
  return { plugins: { legend: { display: false }, tooltip }, ...extra };
}

/** Fill a chart and its <dl> from `{name: "0.0012"}` (exact USD strings). */
function showAmounts(chart, list, amounts) {
  const entries = Object.entries(amounts || {}).sort((a, b) => Number(b[1]) - Number(a[1]));
  chart.data.labels = entries.map(([name]) => name);
  chart.data.datasets[0].data = entries.map(([, usd]) => Number(usd));
  chart.data.datasets[0].exact = entries.map(([, usd]) => String(usd));
  chart.update();
  list.replaceChildren(
    ...entries.flatMap(([name, usd]) => [el("dt", {}, name), el("dd", {}, `$${usd}`)]),
  );
}

export class Charts {
  constructor(Chart) {
    // Live charts redraw on every event: animating each redraw only adds lag.
    Chart.defaults.animation = false;
    Chart.defaults.maintainAspectRatio = false;
    this.tokens = lineChart(Chart, "chart-tokens", "Tokens");
    this.tools = barChart(Chart, "chart-tools", "Tool calls", {
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
    });
    this.costAgent = barChart(Chart, "chart-cost-agent", "USD", moneyOptions({ indexAxis: "y" }));
    this.costModel = new Chart(document.getElementById("chart-cost-model"), {
      type: "doughnut",
      data: { labels: [], datasets: [{ label: "USD", data: [], backgroundColor: PALETTE }] },
      options: moneyOptions(),
    });
    this.budget = new Chart(document.getElementById("chart-budget"), {
      type: "doughnut",
      data: {
        labels: ["spent", "remaining"],
        datasets: [{ data: [], backgroundColor: [PALETTE[0], EMPTY] }],
      },
      options: moneyOptions({ rotation: -90, circumference: 180, cutout: "70%" }),
    });
  }

  /** A `token_usage` event: one point on the token chart. */
  addTokens(event) {
    const { labels, datasets } = this.tokens.data;
    labels.push(clock(event.timestamp));
    datasets[0].data.push(Number(event.data?.total_tokens) || 0);
    if (labels.length > MAX_POINTS) {
      labels.shift();
      datasets[0].data.shift();
    }
  }

  /** A `tool_call` event: one more call of its tool. */
  addToolCall(event) {
    const tool = String(event.data?.tool ?? "?");
    const { labels, datasets } = this.tools.data;
    const index = labels.indexOf(tool);
    if (index >= 0) datasets[0].data[index] += 1;
    else {
      labels.push(tool);
      datasets[0].data.push(1);
    }
  }

  /** Redraw the live charts after a batch of events. */
  update() {
    this.tokens.update();
    this.tools.update();
  }

  /** The body of GET /costs. */
  setCosts(costs) {
    showAmounts(this.costAgent, $("cost-by-agent"), costs.by_agent);
    showAmounts(this.costModel, $("cost-by-model"), costs.by_model);
    $("cost-total").textContent = `total $${costs.total_usd} in ${costs.period}`;
  }

  /** The body of GET /budget: a half-ring gauge of spent against the limit. */
  setBudget(budget) {
    const limited = budget.limit_usd !== null && budget.limit_usd !== undefined;
    const used = typeof budget.utilization_pct === "number" ? budget.utilization_pct : null;
    const dataset = this.budget.data.datasets[0];
    if (limited) {
      dataset.data = [Number(budget.spent_usd), Math.max(Number(budget.remaining_usd ?? 0), 0)];
      dataset.exact = [String(budget.spent_usd), String(budget.remaining_usd)];
      dataset.backgroundColor = [used !== null && used >= 80 ? DANGER : PALETTE[0], EMPTY];
    } else {
      // No limit: an empty ring, so nothing suggests the budget is used up.
      dataset.data = [0, 1];
      dataset.exact = [String(budget.spent_usd), "no limit"];
      dataset.backgroundColor = [PALETTE[0], EMPTY];
    }
    this.budget.update();
    const percent = used === null ? "" : ` (${used.toFixed(1)}%)`;
    $("budget-text").textContent = limited
      ? `$${budget.spent_usd} of $${budget.limit_usd}${percent}`
      : `$${budget.spent_usd} spent, no limit set`;
  }

  /** Forget everything shown (signing out, or another tenant signing in). */
  reset() {
    for (const chart of [this.tokens, this.tools, this.costAgent, this.costModel]) {
      chart.data.labels = [];
      chart.data.datasets[0].data = [];
      chart.update();
    }
    this.budget.data.datasets[0].data = [];
    this.budget.update();
    for (const id of ["cost-by-agent", "cost-by-model", "cost-total", "budget-text"]) {
      $(id).replaceChildren();
    }
  }
}
