// The administrators' model registry (`#/admin/models`): each model's versions with their
// cross-validated metrics, training a new one, moving versions between stages and rolling
// production back; and one version's whole evaluation report
// (`#/admin/models/<name>/versions/<n>`). What this node serves, drift, a shadow's comparison
// with production, advice and live metrics are shown when the server gives them.
//
// Charts are SVG from the API, shown as images: the session cookie authenticates them as it
// does every request of this client. One the server does not draw is left out.

import { ApiError, get, post, put } from "../lib/api.js";
import { clear, dialog, fieldErrors, fullTime, h, shortTime } from "../lib/dom.js";
import { displayName, state, user } from "../lib/store.js";

const SERVING_STAGES = ["production", "canary", "shadow"];
const STAGE_ACTIONS = [
  ["production", "Promote to production"], ["canary", "Canary"], ["shadow", "Shadow"], ["archived", "Archive"],
];
const FEATURES = { score: "Score", length: "Length (characters)", unknown_share: "Share of unseen features" };

const number = (value, digits = 3) => (typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : "—");
const percent = (value) => (typeof value === "number" && Number.isFinite(value) ? `${(value * 100).toFixed(1)}%` : "—");
const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const path = (name) => `/v1/admin/models/${encodeURIComponent(name)}`;

function header(title, back, backLabel) {
  return h("header", { class: "conversation-header" },
    h("a", { href: back, class: "back", "aria-label": backLabel, text: "‹" }), h("h1", { text: title }));
}

function notAdmin(main) {
  if (state.me.role === "admin") return false;
  clear(main, header("Models", "#/", "Back to conversations"),
    h("div", { class: "page" }, h("p", { role: "alert", text: "Only administrators see the model registry." })));
  return true;
}

// An SVG chart of the API, or nothing when the server has none.
function chart(src, alt, caption) {
  const image = h("img", { src, alt });
  const figure = h("figure", { class: "chart" }, image, caption ? h("figcaption", { text: caption }) : null);
  image.addEventListener("error", () => figure.remove());
  return figure;
}

function table(label, headings, rows, { className = "data" } = {}) {
  return h("table", { class: className, "aria-label": label },
    h("thead", {}, h("tr", {}, headings.map((text) => h("th", { scope: "col", text })))),
    h("tbody", {}, rows));
}

// MARK: The list of models

export async function renderModels(main, { current }) {
  if (notAdmin(main)) return;
  const status = h("p", { class: "page-status", role: "status" });
  const list = h("div", { class: "models" });
  clear(main, header("Models", "#/", "Back to conversations"), h("div", { class: "page" }, status, list));
  let answer;
  try {
    answer = await get("/v1/admin/models");
  } catch (error) {
    if (current()) clear(list, h("p", { role: "alert", text: error.message }));
    return;
  }
  if (!current()) return;
  const panels = answer.items.map((model) => new ModelPanel(h("section", { class: "model", "aria-labelledby": `model-${model.name}` }), model,
    { current, say: (text) => { status.textContent = text; } }));
  for (const panel of panels) panel.render();
  clear(list, panels.length ? panels.map((panel) => panel.node) : h("p", { class: "muted", text: "No models." }));
  keepFresh(panels, current);
}

// Drift, the shadow's comparison and live metrics change as messages are scored and decided:
// the models are read again every little while as long as the page is shown.
async function keepFresh(panels, current) {
  while (current()) {
    await wait(10_000);
    if (!current() || document.hidden) continue;
    for (const panel of panels) await panel.refresh();
  }
}

class ModelPanel {
  constructor(node, model, { current, say }) {
    this.node = node;
    this.model = model;
    this.current = current;
    this.say = say;
    this.training = false;
  }

  get name() { return this.model.name; }

  async reload() {
    this.model = await get(path(this.name));
    if (this.current()) this.render();
  }

  // Read again; drawn again only when something changed (and not while training or a stage
  // change is being followed, which read it themselves).
  async refresh() {
    if (this.training || this.watching) return;
    const model = await get(path(this.name)).catch(() => null);
    if (!model || !this.current() || JSON.stringify(model) === JSON.stringify(this.model)) return;
    this.model = model;
    this.render();
  }

  render() {
    const model = this.model;
    const trainer = model.versions.find((v) => v.trained_by)?.trained_by;
    if (trainer && !state.users.has(trainer)) user(trainer);
    const active = document.activeElement && this.node.contains(document.activeElement) ? document.activeElement : null;
    const focused = active && (active.getAttribute("aria-label") || active.textContent);
    const open = new Set([...this.node.querySelectorAll("details[open]")].map((node) => node.dataset.key));
    clear(this.node,
      h("h2", { id: `model-${model.name}`, tabindex: -1, text: model.name }),
      this.servingLine(),
      h("div", { class: "model-actions" },
        h("button", { type: "button", class: "primary", text: this.training ? "Training…" : "Train a new version", disabled: this.training,
          onclick: () => this.train() })),
      this.advice(), this.drift(), this.shadow(),
      h("h3", { text: "Versions" }),
      model.versions.length ? this.versions() : h("p", { class: "muted", text: "No versions yet: train one." }));
    // Rendered again after a change: the button used keeps the focus when it is still there.
    for (const node of this.node.querySelectorAll("details")) if (open.has(node.dataset.key)) node.open = true;
    if (!focused) return;
    const again = [...this.node.querySelectorAll("button, a, summary")].find((node) => (node.getAttribute("aria-label") || node.textContent) === focused);
    (again && !again.disabled ? again : this.node.querySelector("h2")).focus();
  }

  // What this node scores with. It loads a version after a stage change, a moment later: until
  // then the line says so, and the model is read again.
  servingLine() {
    const model = this.model;
    const serving = model.serving || {};
    const stages = SERVING_STAGES.filter((stage) => serving[stage]);
    const line = h("p", { class: "serving" }, stages.length
      ? `Serving on this node: ${stages.map((stage) => `${stage} ${serving[stage]}`).join(" · ")}`
      : "Serving nothing on this node: every message is let through unscored.");
    if (!this.settled()) {
      line.append(h("span", { class: "muted", text: " (loading the latest stages…)" }));
      this.watchServing();
    }
    return line;
  }

  settled() {
    const expected = {};
    for (const version of this.model.versions) if (SERVING_STAGES.includes(version.stage)) expected[version.stage] = `${this.name}@${version.version}`;
    const serving = this.model.serving || {};
    return SERVING_STAGES.every((stage) => (expected[stage] ?? null) === (serving[stage] ?? null));
  }

  async watchServing() {
    if (this.watching) return;
    this.watching = true;
    try {
      for (let tries = 0; tries < 40 && this.current() && !this.settled(); tries++) {
        await wait(750);
        if (!this.current()) return;
        const model = await get(path(this.name)).catch(() => null);
        if (!model || !this.current()) continue;
        const changed = JSON.stringify(model.serving) !== JSON.stringify(this.model.serving);
        this.model = model;
        if (changed || this.settled()) this.render();
      }
    } finally {
      this.watching = false;
    }
  }

  advice() {
    const advice = Array.isArray(this.model.advice) ? this.model.advice : [];
    if (!advice.length) return null;
    return h("div", { class: "advice" }, h("h3", { text: "Advice" }),
      h("ul", {}, advice.map((item) => h("li", {},
        h("strong", { text: `${item.action ? item.action[0].toUpperCase() + item.action.slice(1) : "Note"}${item.version ? ` ${item.version}` : ""}` }),
        item.reason ? `: ${item.reason}` : ""))));
  }

  drift() {
    return driftSection(this.model.drift, `${path(this.name)}/charts/drift.svg`);
  }

  shadow() {
    return shadowSection(this.model.shadow);
  }

  versions() {
    const versions = this.model.versions;
    const live = versions.some((v) => v.live && typeof v.live === "object");
    const headings = ["Version", "Stage", "F1", "Precision", "Recall", "ROC-AUC", "Examples", "Created"];
    if (live) headings.push("Live (reviewed)");
    headings.push("Actions");
    return table(`Versions of ${this.name}`, headings, versions.map((version) => {
      const label = `${this.name}@${version.version}`;
      const metrics = version.metrics || {};
      return h("tr", { dataset: { version: version.version } },
        h("th", { scope: "row" }, h("a", { href: `#/admin/models/${encodeURIComponent(this.name)}/versions/${version.version}`, text: label })),
        h("td", {}, h("span", { class: `stage ${version.stage}`, text: version.stage }),
          version.note ? h("span", { class: "note", text: version.note }) : null),
        h("td", { text: number(metrics.f1) }),
        h("td", { text: number(metrics.precision) }),
        h("td", { text: number(metrics.recall) }),
        h("td", { text: number(metrics.roc_auc) }),
        h("td", { text: String(version.example_count ?? "—") }),
        h("td", {}, h("time", { datetime: version.created_at, title: fullTime(version.created_at), text: shortTime(version.created_at) })),
        live ? h("td", { text: liveSummary(version.live) }) : null,
        h("td", {}, h("div", { class: "stage-actions" },
          STAGE_ACTIONS.filter(([stage]) => stage !== version.stage).map(([stage, text]) =>
            h("button", { type: "button", "aria-label": `${text}: ${label}`, text, onclick: () => this.setStage(version, stage) })),
          version.stage === "production" && version.previous_id
            ? h("button", { type: "button", class: "danger", "aria-label": `Roll back: ${label}`, text: "Roll back", onclick: () => this.rollback(version) }) : null)));
    }));
  }

  async setStage(version, stage) {
    const label = `${this.name}@${version.version}`;
    if (stage === "production" && !confirm(`Put ${label} in production? It will score every message (but a canary's share).`)) return;
    if (stage === "archived" && version.stage === "production" && !confirm(`Archive ${label}? Nothing will score messages until another version is in production.`)) return;
    try {
      const changed = await put(`${path(this.name)}/versions/${version.version}/stage`, { stage });
      this.say(`${label} is now ${changed.stage === "archived" ? "archived" : `the ${changed.stage} version`}.`);
      await this.reload();
    } catch (error) { this.say(`${label} could not move to ${stage}: ${error.message}`); }
  }

  rollback(version) {
    const label = `${this.name}@${version.version}`;
    const reason = h("textarea", { id: "rollback-reason", name: "reason", rows: 3, maxlength: 500, required: true });
    const form = h("form", { class: "stack" },
      h("p", { class: "muted", text: `${label} is archived and the version it replaced goes back in production.` }),
      h("label", { for: "rollback-reason", text: "Reason" }), reason,
      h("p", { class: "form-error", role: "alert" }),
      h("button", { type: "submit", class: "danger", text: "Roll back" }));
    const box = dialog(`Roll back ${label}`, form);
    reason.focus();
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const answer = await post(`${path(this.name)}/rollback`, { reason: reason.value.trim() });
        box.close();
        this.say(`Rolled back ${answer.rolled_back.name}@${answer.rolled_back.version}: ${answer.production.name}@${answer.production.version} is in production again.`);
        await this.reload();
      } catch (error) { fieldErrors(form, error); }
    });
  }

  // Training runs in the background on the server: the new version appears when it is done.
  async train() {
    const before = Math.max(0, ...this.model.versions.map((v) => v.version));
    try {
      await post(`${path(this.name)}/train`);
    } catch (error) {
      this.say(`Training could not start: ${error.message}`);
      return;
    }
    this.training = true;
    this.say(`Training a new version of ${this.name}… It appears in the table when it is done.`);
    this.render();
    try {
      for (let tries = 0; tries < 400 && this.current(); tries++) {
        await wait(1500);
        const model = await get(path(this.name)).catch(() => null);
        if (!model || !this.current()) continue;
        const made = model.versions.find((v) => v.version > before);
        this.model = model;
        if (made) {
          this.say(`Trained ${this.name}@${made.version}, a candidate: F1 ${number(made.metrics?.f1)}.`);
          return;
        }
      }
      if (this.current()) this.say(`${this.name} is still training; its version appears here when it is done (refresh the page).`);
    } finally {
      this.training = false;
      if (this.current()) this.render();
    }
  }
}

// A served version's drift on this node: each feature's PSI against its training reference,
// and the bins behind it. `chartURL`: production's drift picture.
function driftSection(drift, chartURL) {
  if (!drift || typeof drift !== "object") return null;
  const features = Array.isArray(drift.features) ? drift.features : [];
  const version = drift.version ?? "the production version";
  const needs = typeof drift.minimum === "number" ? ` (a PSI needs ${drift.minimum})` : "";
  return h("div", { class: "drift" },
    h("h3", { text: `Drift of ${version}` }),
    h("p", { text: `${drift.window ?? 0}${typeof drift.capacity === "number" ? ` of the last ${drift.capacity}` : ""} messages scored on this node${needs}; `
      + `a PSI under 0.1 is no shift, an alert from ${number(drift.threshold, 2)}.` }),
    drift.alert ? h("p", { class: "warning", text: "Drift alert: the messages scored lately differ from the training data. Consider training a new version." }) : null,
    features.length ? table(`Drift of ${version} by feature`, ["Feature", "PSI", "Share of messages by bin: at training → now"],
      features.map((feature) => h("tr", {},
        h("th", { scope: "row", text: FEATURES[feature.feature] || feature.feature }),
        h("td", { text: typeof feature.psi === "number" ? number(feature.psi) : "not yet" }),
        h("td", {}, h("details", { dataset: { key: `drift-${feature.feature}` } }, h("summary", { text: "Bins" }),
          h("ul", { class: "bins" }, (feature.labels || []).map((label, index) =>
            h("li", { text: `${label}: ${percent(feature.reference?.[index])} → ${percent(feature.current?.[index])}` })))))))) : null,
    chartURL ? chart(chartURL, `Drift of ${version}: each feature's distribution at training and now`) : null);
}

// A shadow version's scores beside production's on the same messages.
function shadowSection(shadow) {
  if (!shadow || typeof shadow !== "object") return null;
  const production = Array.isArray(shadow.production) ? shadow.production.join(", ") : shadow.production;
  const disagreements = Array.isArray(shadow.disagreements) ? shadow.disagreements : [];
  const threshold = typeof shadow.threshold === "number" ? ` at the threshold ${shadow.threshold}` : "";
  return h("div", { class: "shadow" },
    h("h3", { text: `Shadow ${shadow.version ?? ""} beside production${production ? ` ${production}` : ""}` }),
    h("p", { text: `Compared on ${shadow.compared ?? 0} messages${threshold}: they agree on ${percent(shadow.agreement)}. `
      + `The shadow would flag ${shadow.would_flag ?? 0} that production lets through, and clear ${shadow.would_clear ?? 0} that production flags.`
      + (typeof shadow.mean_difference === "number" ? ` Its scores differ from production's by ${number(shadow.mean_difference)} on average.` : "") }),
    disagreements.length ? table("Disagreements", ["When", "Conversation", "Message", "Production", "Production score", "Shadow score"],
      disagreements.map((row) => {
        const conversation = row.conversation_id && state.conversations.get(row.conversation_id);
        return h("tr", {},
          h("td", {}, row.at ? h("time", { datetime: row.at, title: fullTime(row.at), text: shortTime(row.at) }) : "—"),
          h("td", {}, conversation ? h("a", { href: `#/c/${row.conversation_id}`, text: conversation.title || "Open it" })
            : h("span", { class: "mono", title: row.conversation_id, text: String(row.conversation_id ?? "").slice(0, 8) })),
          h("td", { class: "mono", title: row.message_id, text: String(row.message_id ?? "").slice(0, 8) }),
          h("td", { text: row.production_version ?? "—" }),
          h("td", { text: number(row.production_score, 2) }),
          h("td", { text: number(row.shadow_score, 2) }));
      })) : null);
}

function liveSummary(live) {
  if (!live || typeof live !== "object") return "—";
  if (!live.reviewed) return "none reviewed yet";
  return `F1 ${number(live.f1)} (precision ${number(live.precision)}, recall ${number(live.recall)}) of ${live.reviewed ?? 0}`;
}

// MARK: One version

export async function renderModelVersion(main, name, versionNumber, { current }) {
  if (notAdmin(main)) return;
  const label = `${name}@${versionNumber}`;
  const body = h("div", { class: "page" }, h("p", { class: "muted", text: "Loading…" }));
  clear(main, header(label, "#/admin/models", "Back to models"), body);
  let version;
  try {
    version = await get(`${path(name)}/versions/${versionNumber}`);
  } catch (error) {
    if (current()) clear(body, h("p", { role: "alert", text: error instanceof ApiError && error.status === 404 ? `There is no ${label}.` : error.message }));
    return;
  }
  if (version.trained_by) await user(version.trained_by);
  if (!current()) return;
  const report = version.report || {};
  const charts = `${path(name)}/versions/${versionNumber}/charts`;
  const confusion = report.confusion || {};
  const facts = (pairs) => h("dl", { class: "facts" }, pairs.filter(([, value]) => value !== null && value !== undefined && value !== "")
    .map(([term, value]) => [h("dt", { text: term }), h("dd", {}, value)]));
  const hyperparameters = Object.entries(version.hyperparameters || {}).map(([key, value]) => `${key} = ${value}`).join(", ");
  const chosen = version.hyperparameters?.l2;
  clear(body,
    h("p", { class: "crumbs" }, h("a", { href: "#/admin/models", text: "All models" }), ` › ${label}`),
    h("section", { "aria-labelledby": "version-summary" }, h("h2", { id: "version-summary", text: "Summary" }),
      facts([
        ["Stage", h("span", { class: `stage ${version.stage}`, text: version.stage })],
        ["Note", version.note],
        ["Algorithm", version.algorithm],
        ["Hyperparameters", hyperparameters],
        ["Examples", `${version.example_count}${typeof report.positives === "number" ? ` (${report.positives} to stop)` : ""}`],
        ["Evaluation", typeof report.folds === "number" ? `${report.folds}-fold cross-validation, out-of-fold scores, threshold ${report.threshold}` : null],
        ["Trained", `${fullTime(version.created_at)}${version.trained_by ? ` by ${displayName(version.trained_by)}` : " from the command line"}`],
        ["Data hash", h("code", { text: String(version.data_hash ?? "").slice(0, 16) })],
        ["Artifact", `${Math.round((version.artifact_bytes || 0) / 1024)} KB, SHA-256 ${String(version.checksum ?? "").slice(0, 16)}…`],
      ])),
    h("section", { "aria-labelledby": "version-metrics" }, h("h2", { id: "version-metrics", text: "Metrics" }),
      facts([
        ["Precision", number(report.precision)], ["Recall", number(report.recall)], ["F1", number(report.f1)],
        ["ROC-AUC", number(report.roc_auc)], ["Average precision", number(report.average_precision)],
        ["Brier score", number(report.brier_score)],
        ["Threshold for 95% precision", typeof report.threshold_for_precision95 === "number" ? number(report.threshold_for_precision95) : "none reaches it"],
      ]),
      version.live && typeof version.live === "object" ? [h("h3", { text: "Live, on the messages moderators reviewed" }), facts([
        ["Reviewed", String(version.live.reviewed ?? 0)], ["Precision", number(version.live.precision)],
        ["Recall", number(version.live.recall)], ["F1", number(version.live.f1)],
        ["True positives", String(version.live.true_positives ?? "—")], ["False positives", String(version.live.false_positives ?? "—")],
        ["False negatives", String(version.live.false_negatives ?? "—")], ["True negatives", String(version.live.true_negatives ?? "—")],
      ])] : null),
    version.drift || version.shadow ? h("section", { "aria-labelledby": "version-watch" }, h("h2", { id: "version-watch", text: "In service" }),
      driftSection(version.drift, version.stage === "production" ? `${path(name)}/charts/drift.svg` : null),
      shadowSection(version.shadow)) : null,
    h("section", { "aria-labelledby": "version-confusion" }, h("h2", { id: "version-confusion", text: "Confusion matrix" }),
      h("table", { class: "data confusion", "aria-label": "Confusion matrix" },
        h("caption", { text: `Out-of-fold predictions at threshold ${report.threshold ?? 0.5}` }),
        h("thead", {}, h("tr", {}, h("td"), h("th", { scope: "col", text: "Predicted: let through" }), h("th", { scope: "col", text: "Predicted: stop" }))),
        h("tbody", {},
          h("tr", {}, h("th", { scope: "row", text: "Fine" }), h("td", { text: String(confusion.true_negatives ?? "—") }), h("td", { text: String(confusion.false_positives ?? "—") })),
          h("tr", {}, h("th", { scope: "row", text: "Should stop" }), h("td", { text: String(confusion.false_negatives ?? "—") }), h("td", { text: String(confusion.true_positives ?? "—") })))),
      chart(`${charts}/confusion.svg`, `Confusion matrix of ${label}`)),
    Array.isArray(report.grid) && report.grid.length ? h("section", { "aria-labelledby": "version-grid" }, h("h2", { id: "version-grid", text: "Grid search" }),
      table("Grid search", ["L2 penalty", "Cross-validated F1"], report.grid.map((point) => h("tr", { class: point.penalty === chosen ? "chosen" : undefined },
        h("th", { scope: "row", text: `${point.penalty}${point.penalty === chosen ? " (chosen)" : ""}` }), h("td", { text: number(point.f1) }))))) : null,
    curveSection("precision-recall", "Precision and recall by threshold", chart(`${charts}/precision-recall.svg`, `Precision-recall curve of ${label}`),
      report.precision_recall, ["Threshold", "Precision", "Recall"], (p) => [number(p.threshold), number(p.precision), number(p.recall)]),
    curveSection("learning-curve", "Learning curve", chart(`${charts}/learning-curve.svg`, `Learning curve of ${label}: training and validation F1 by training size`),
      report.learning_curve, ["Training size", "Training F1", "Validation F1"], (p) => [String(p.training_size), number(p.training_f1), number(p.validation_f1)]),
    curveSection("calibration", "Calibration", chart(`${charts}/calibration.svg`, `Calibration of ${label}: predicted probability against observed frequency`),
      report.calibration, ["Mean predicted", "Observed", "Messages"], (p) => [number(p.mean_predicted), number(p.observed), String(p.count)]));
}

// A curve of the report: its chart, and its points as a table (the chart's text alternative).
function curveSection(id, title, figure, points, headings, cells) {
  if (!Array.isArray(points) || !points.length) return null;
  return h("section", { "aria-labelledby": `version-${id}` }, h("h2", { id: `version-${id}`, text: title }), figure,
    h("details", {}, h("summary", { text: `${title}: the ${points.length} points` }),
      table(title, headings, points.map((point) => h("tr", {}, cells(point).map((text) => h("td", { text })))))));
}
