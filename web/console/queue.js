// The review queue: open inquiries by priority, filtered by department and queue, kept current
// by the API's Server-Sent Events; the detail of the chosen one, where an agent accepts or
// corrects its labels and sends the (drafted or edited) reply; and search over past inquiries.
import { ApiFailure, api, h, percent, signOut, when } from "./api.js";

const TASKS = ["intent", "category", "sentiment", "urgency", "department"];
const $ = (id) => document.getElementById(id);
const state = { cursor: null, selected: null, classes: null, filters: { department: "", queue: "" }, departments: [] };

$("sign-out").addEventListener("click", signOut);

/** Where an agent's reply goes, by the inquiry's channel (README, "Agent console"). */
function deliveryNote(channel) {
  if (channel === "chat") return " Sent on the customer's chat session.";
  if (channel === "email") return " Sent by mail when the email connector sends replies (SMTP_URL); otherwise recorded.";
  return ` The ${channel} channel has no delivery of its own: the reply is recorded.`;
}

function showError(element, error) {
  element.textContent = error instanceof ApiFailure ? `${error.message} (${error.status})` : String(error.message ?? error);
  element.hidden = false;
}

// ---------------------------------------------------------------------------------------------
// The queue

function fillFilters() {
  const department = $("filter-department");
  const queue = $("filter-queue");
  const { filters, departments } = state;
  department.replaceChildren(
    h("option", { value: "" }, "All departments"),
    ...departments.map((d) => h("option", { value: d.department, selected: d.department === filters.department }, `${d.department} (${d.open})`)),
  );
  const queues = (departments.find((d) => d.department === filters.department)?.queues ?? departments.flatMap((d) => d.queues)).reduce((all, q) => {
    all.set(q.queue, (all.get(q.queue) ?? 0) + q.open);
    return all;
  }, new Map());
  queue.replaceChildren(h("option", { value: "" }, "All queues"), ...[...queues].sort().map(([name, open]) => h("option", { value: name, selected: name === filters.queue }, `${name} (${open})`)));
  // A filter that no longer has open items stays chosen (the list says it is empty).
  if (filters.department && !departments.some((d) => d.department === filters.department)) department.append(h("option", { value: filters.department, selected: true }, `${filters.department} (0)`));
  if (filters.queue && !queues.has(filters.queue)) queue.append(h("option", { value: filters.queue, selected: true }, `${filters.queue} (0)`));
}

function itemButton(item) {
  const flags = [
    item.escalated ? h("span", { class: "sb-badge bad" }, "escalated") : null,
    item.human_review ? h("span", { class: "sb-badge warn" }, "review") : null,
    item.urgency ? h("span", { class: `sb-badge ${item.urgency === "critical" || item.urgency === "high" ? "bad" : "info"}` }, item.urgency) : null,
  ];
  return h(
    "li",
    {},
    h(
      "button",
      {
        type: "button",
        class: `queue-item${state.selected === item.inquiry_id ? " selected" : ""}`,
        "data-inquiry": item.inquiry_id,
        "aria-current": state.selected === item.inquiry_id ? "true" : undefined,
        onclick: () => select(item.inquiry_id),
      },
      h("span", { class: "queue-priority", title: "priority" }, Math.round(item.priority_score)),
      h(
        "span",
        { class: "queue-text" },
        h("strong", {}, item.subject || item.snippet || item.inquiry_id),
        h("span", { class: "sb-muted" }, `${item.department} · ${item.queue} · ${item.channel ?? "?"} · ${when(item.received_at)}`),
        h("span", { class: "queue-flags" }, flags),
      ),
    ),
  );
}

async function loadQueue() {
  const params = new URLSearchParams({ limit: "200" });
  if (state.filters.department) params.set("department", state.filters.department);
  if (state.filters.queue) params.set("queue", state.filters.queue);
  try {
    const queue = await api(`/v1/review-queue?${params}`);
    $("queue-error").hidden = true;
    state.departments = queue.departments;
    if (state.cursor === null) state.cursor = queue.cursor;
    fillFilters();
    $("queue-total").textContent = String(queue.total);
    $("queue-list").replaceChildren(...queue.items.map(itemButton));
    $("queue-empty").hidden = queue.items.length > 0;
  } catch (error) {
    showError($("queue-error"), error);
  }
}

$("filter-department").addEventListener("change", (event) => {
  state.filters.department = event.target.value;
  state.filters.queue = "";
  void loadQueue();
});
$("filter-queue").addEventListener("change", (event) => {
  state.filters.queue = event.target.value;
  void loadQueue();
});

// ---------------------------------------------------------------------------------------------
// Live updates: the feed says which inquiries changed; the queue (and the open detail) reload.

let reloadTimer;
function scheduleReload(ids) {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => {
    void loadQueue();
    if (state.selected && ids.has(state.selected)) void select(state.selected, { keepEdits: true });
  }, 150);
}

function listen() {
  const status = $("live-status");
  const pending = new Set();
  const source = new EventSource(`/v1/review-queue/events${state.cursor ? `?cursor=${state.cursor}` : ""}`);
  source.addEventListener("open", () => {
    status.textContent = "live";
    status.className = "sb-badge ok";
  });
  source.addEventListener("changed", (event) => {
    const change = JSON.parse(event.data);
    for (const id of change.inquiry_ids) pending.add(id);
    scheduleReload(new Set(pending));
    pending.clear();
  });
  source.addEventListener("unavailable", () => {
    status.textContent = "archive unavailable";
    status.className = "sb-badge warn";
  });
  source.addEventListener("error", async () => {
    status.textContent = "reconnecting…";
    status.className = "sb-badge warn";
    // EventSource retries by itself; an ended session needs a new sign-in instead.
    if (source.readyState === EventSource.CLOSED) {
      try {
        await api("/v1/review-queue?limit=1");
        setTimeout(listen, 2_000);
      } catch {
        /* api() went to the login page on 401 */
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// The detail of one inquiry

async function classes() {
  state.classes ??= await api("/v1/label-classes");
  return state.classes;
}

function predictionsTable(detail) {
  const rows = detail.predictions.map((p) =>
    h(
      "tr",
      {},
      h("th", { scope: "row" }, p.task),
      h("td", {}, p.predicted_label),
      h("td", { class: "num" }, percent(p.confidence)),
      h("td", {}, h("code", {}, p.model)),
      h("td", {}, p.label ? `${p.label} (${p.label_source})` : "–"),
    ),
  );
  return h(
    "table",
    { class: "predictions" },
    h("caption", { class: "visually-hidden" }, "Predictions"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Task"), h("th", { scope: "col" }, "Predicted"), h("th", { scope: "col", class: "num" }, "Confidence"), h("th", { scope: "col" }, "Model"), h("th", { scope: "col" }, "Label"))),
    h("tbody", {}, rows),
  );
}

function labelForm(detail, known, previousStatus) {
  const current = (task) => {
    if (task === "department") return detail.labels.find((l) => l.task === task)?.label ?? detail.routing?.department ?? "";
    const prediction = detail.predictions.find((p) => p.task === task);
    return prediction?.label ?? (task === "urgency" ? detail.routing?.urgency : null) ?? prediction?.predicted_label ?? "";
  };
  const status = h("p", { class: "sb-muted", role: "status", id: "label-status" }, previousStatus ?? "");
  const show = (message) => (($("label-status") ?? status).textContent = message);
  const fields = TASKS.map((task) => {
    const value = current(task);
    const options = [...new Set([...(known[task] ?? []), value].filter(Boolean))];
    return h(
      "div",
      { class: "sb-field" },
      h("label", { for: `label-${task}` }, task),
      h("select", { id: `label-${task}`, name: task }, options.map((option) => h("option", { value: option, selected: option === value }, option))),
    );
  });
  const form = h(
    "form",
    { id: "label-form", "aria-labelledby": "labels-title" },
    h("h3", { id: "labels-title" }, "Labels"),
    h("p", { class: "sb-muted" }, "Each choice starts at what the pipeline decided; keep it to accept, change it to correct."),
    h("div", { class: "sb-row" }, fields),
    h("button", { type: "submit", class: "primary", id: "label-submit" }, "Save labels"),
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = Object.fromEntries(TASKS.map((task) => [task, form.elements[task].value]).filter(([, value]) => value));
    show("Saving…");
    try {
      const accepted = await api(`/v1/inquiries/${encodeURIComponent(detail.inquiry_id)}/labels`, { method: "POST", body });
      const changed = accepted.labels.filter((l) => l.label !== l.predicted_label).map((l) => `${l.task} → ${l.label}`);
      show(`Saved ${accepted.labels.length} labels${changed.length ? `; corrected ${changed.join(", ")}` : " (all accepted)"}.`);
    } catch (error) {
      show(`Not saved: ${error.message}`);
    }
  });
  return form;
}

function replyForm(detail, previousText, previousStatus) {
  const draft = detail.response?.text ?? "";
  const status = h("p", { class: "sb-muted", role: "status", id: "reply-status" }, previousStatus ?? "");
  // A live update may redraw the detail while a reply is on its way: its outcome goes to the status shown then.
  const show = (message) => (($("reply-status") ?? status).textContent = message);
  const text = h("textarea", { id: "reply-text", name: "text", rows: 8 });
  text.value = previousText ?? draft;
  const form = h(
    "form",
    { id: "reply-form", "aria-labelledby": "reply-title" },
    h("h3", { id: "reply-title" }, "Reply"),
    h(
      "p",
      { class: "sb-muted" },
      detail.response
        ? detail.response.strategy === "human"
          ? "The holding message drafted on hand-off (strategy human): write the answer, or send it as it is."
          : `Drafted by the ${detail.response.strategy} strategy${detail.response.model ? ` (${detail.response.model})` : ""}. Edit it or send it as it is.`
        : "No drafted reply yet.",
      detail.inquiry ? deliveryNote(detail.inquiry.channel) : "",
    ),
    h("div", { class: "sb-field" }, h("label", { for: "reply-text" }, "Reply to the customer"), text),
    h("div", { class: "sb-row" }, h("button", { type: "submit", class: "primary", id: "reply-submit" }, "Send reply"), h("button", { type: "button", class: "quiet", onclick: () => (text.value = draft) }, "Restore draft")),
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!text.value.trim()) {
      show("Write a reply first.");
      return;
    }
    const button = form.querySelector("#reply-submit");
    button.disabled = true;
    show("Sending…");
    // One id per attempt of this reply: a retry after a lost answer is the same reply, not a second one.
    form.dataset.replyId ??= crypto.randomUUID();
    try {
      const sent = await api(`/v1/inquiries/${encodeURIComponent(detail.inquiry_id)}/replies`, { method: "POST", body: { text: text.value, reply_id: form.dataset.replyId } });
      show(`Sent${sent.edited ? " (edited)" : " (as drafted)"} at ${when(sent.sent_at)}.`);
      delete form.dataset.replyId;
    } catch (error) {
      show(`Not sent: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

function renderDetail(detail, known, keepEdits) {
  const pane = $("detail");
  const previous = keepEdits ? pane.querySelector("#reply-text")?.value : undefined;
  const previousStatus = (id) => (keepEdits ? pane.querySelector(`#${id}`)?.textContent : undefined);
  const { inquiry, routing, urgency } = detail;
  const title = inquiry?.subject || "(no subject)";
  const parts = [
    h("h2", { id: "detail-title" }, title),
    h(
      "p",
      { class: "sb-muted" },
      `${inquiry?.channel ?? "?"} · received ${when(inquiry?.received_at)} · customer ${inquiry?.customer.id ?? "unknown"}${inquiry?.customer.tier ? ` (${inquiry.customer.tier})` : ""} · `,
      h("code", {}, detail.inquiry_id),
      detail.open ? h("span", { class: "sb-badge warn" }, "open") : h("span", { class: "sb-badge ok" }, "answered"),
    ),
    h("blockquote", { class: "inquiry-text" }, inquiry?.text ?? "(not archived yet)"),
    h("h3", {}, "Predictions"),
    predictionsTable(detail),
    h("h3", {}, "Urgency"),
    urgency
      ? h(
          "p",
          { id: "urgency" },
          h("strong", {}, urgency.level ?? "?"),
          " — ",
          urgency.explanation,
          urgency.signals.length ? h("span", { class: "queue-flags" }, urgency.signals.map((s) => h("span", { class: "sb-badge warn" }, s))) : " (no signals)",
        )
      : h("p", { class: "sb-muted" }, "No urgency prediction yet."),
    h("h3", {}, "Routing"),
    routing
      ? h(
          "dl",
          { class: "routing", id: "routing" },
          h("dt", {}, "Department / queue"),
          h("dd", {}, `${routing.department} / ${routing.queue}`),
          h("dt", {}, "Priority"),
          h("dd", {}, routing.priority_score.toFixed(1)),
          h("dt", {}, "Escalated"),
          h("dd", {}, routing.escalated ? `yes: ${routing.escalation_reason ?? "no reason given"}` : "no"),
          h("dt", {}, "Human review"),
          h("dd", {}, routing.human_review ? `yes: ${routing.review_reasons.join("; ") || "no reason given"}` : "no"),
          routing.missing_parts.length ? [h("dt", {}, "Missing predictions"), h("dd", {}, routing.missing_parts.join(", "))] : null,
        )
      : h("p", { class: "sb-muted" }, "Not routed yet."),
    labelForm(detail, known, previousStatus("label-status")),
    replyForm(detail, previous, previousStatus("reply-status")),
    detail.replies.length
      ? h("section", { "aria-labelledby": "sent-title" }, h("h3", { id: "sent-title" }, "Replies sent"), h("ul", { class: "sent-replies" }, detail.replies.map((r) => h("li", {}, h("span", { class: "sb-muted" }, `${r.agent} · ${when(r.sent_at)}${r.edited ? " · edited" : ""}`), h("p", {}, r.text)))))
      : null,
    detail.labels.length
      ? h("section", { "aria-labelledby": "given-title" }, h("h3", { id: "given-title" }, "Labels given"), h("ul", {}, detail.labels.map((l) => h("li", {}, `${l.task}: ${l.label} (${l.label_source}, ${when(l.labeled_at)}; the model said ${l.judged_label})`))))
      : null,
  ];
  pane.replaceChildren(...parts.filter(Boolean));
}

async function select(inquiryId, { keepEdits = false } = {}) {
  state.selected = inquiryId;
  for (const button of document.querySelectorAll(".queue-item")) {
    const on = button.dataset.inquiry === inquiryId;
    button.classList.toggle("selected", on);
    if (on) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
  try {
    const [detail, known] = await Promise.all([api(`/v1/inquiries/${encodeURIComponent(inquiryId)}/review`), classes()]);
    if (state.selected === inquiryId) renderDetail(detail, known, keepEdits);
  } catch (error) {
    const pane = $("detail");
    pane.replaceChildren(h("h2", { id: "detail-title" }, "Cannot show this inquiry"), h("p", { class: "sb-error", role: "alert" }, error.message));
  }
}

// ---------------------------------------------------------------------------------------------
// Search

$("search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const q = $("search-q").value.trim();
  const params = new URLSearchParams({ size: "20" });
  if (q) params.set("q", q);
  $("search-summary").textContent = "Searching…";
  try {
    const found = await api(`/v1/inquiries?${params}`);
    $("search-summary").textContent = `${found.total} found${found.total > found.results.length ? `, the first ${found.results.length} shown` : ""}.`;
    $("search-results").replaceChildren(
      ...found.results.map((hit) =>
        h(
          "li",
          {},
          h(
            "button",
            { type: "button", class: "queue-item", "data-inquiry": hit.inquiry_id, onclick: () => select(hit.inquiry_id) },
            h("span", { class: "queue-priority" }, hit.priority_score === null ? "–" : Math.round(hit.priority_score)),
            h("span", { class: "queue-text" }, h("strong", {}, hit.subject || hit.inquiry_id), h("span", { class: "sb-muted" }, `${hit.department ?? "?"} · ${hit.intent ?? "?"} · ${when(hit.received_at)}`)),
          ),
        ),
      ),
    );
  } catch (error) {
    $("search-summary").textContent = `Search failed: ${error.message}`;
  }
});

await loadQueue();
listen();
