// The reports page: pick a date range (the last 7 days by default), a manager and a
// line; each report (calls, sources, funnel, promises, meetings) is fetched from
// GET /api/reports/NAME as tables and drawn as a chart with Chart.js (vendored,
// window.Chart) above its tables, each with a CSV link. The aggregation is the
// server's; the page only draws it.
import { t, applyI18n, bindLangSwitch, onLangChange, currentLang } from "./i18n.js";
import { $, el, show, api, loginFlow, logout } from "./common.js";

const REPORTS = ["calls", "sources", "funnel", "promises", "meetings"];

const COLORS = {
  answered: "#2b8a3e", missed: "#e03131", calls: "#1f6feb", abandoned_while_ringing: "#f08c00",
  leads: "#1f6feb", cost_per_lead: "#ae3ec9", mismatches: "#f08c00",
  on_time: "#2b8a3e", late: "#f08c00", open: "#adb5bd",
  meetings: "#1f6feb", meetings_on_first_call: "#2b8a3e", first_calls: "#adb5bd",
  reached: "#1f6feb", lost: "#e03131",
};
const PALETTE = ["#1f6feb", "#2b8a3e", "#f08c00", "#e03131", "#ae3ec9", "#0c8599", "#5c940d", "#adb5bd"];

// Each report's charts: which table, which columns as series, and how.
const CHARTS = {
  calls: [
    { id: "per_day", table: "per_day", type: "bar", series: ["answered", "missed"], title: "chartPerDay" },
    { id: "per_hour", table: "per_hour", type: "bar", series: ["answered", "missed"], stacked: true, title: "chartPerHour" },
  ],
  sources: [{ id: "channels", table: "channels", type: "bar", series: ["leads"], line: "cost_per_lead", title: "chartSources" }],
  funnel: [{ id: "funnel", build: funnelChart, title: "chartFunnel" }],
  promises: [{ id: "kept", table: "kept", type: "bar", series: ["on_time", "late", "missed", "open"], stacked: true, title: "chartKept" }],
  meetings: [{ id: "per_manager", table: "per_manager", type: "bar", series: ["meetings", "meetings_on_first_call"], title: "chartMeetings" }],
};

const results = new Map(); // report name -> {ok, data | error}
const charts = new Map();  // "report/chart" -> Chart
const lines = new Set();
let query = null;          // the filters of the shown reports

applyI18n(document);
bindLangSwitch($("lang"));
onLangChange(() => { fillManagers(); renderAll(); });
$("logout").addEventListener("click", logout);

let managers = [];

loginFlow(async (user) => {
  $("user-name").textContent = user.name || user.login;
  show($("status-group"), true);
  if (user.role === "operator") {
    show($("not-supervisor"), true);
    return;
  }
  show($("filters"), true);
  show($("reports"), true);
  initFilters();
  try {
    const r = await api("GET", "/api/operators");
    if (r.ok && Array.isArray(r.data)) managers = r.data.filter((o) => o && o.login);
  } catch { /* the filter works with a typed login too */ }
  fillManagers();
  load();
});

// ---- filters ----

function ymd(d) {
  const pad = (x) => String(x).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

function initFilters() {
  const p = new URLSearchParams(location.search);
  const today = new Date();
  const weekAgo = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 6);
  $("f-from").value = validDate(p.get("from")) || ymd(weekAgo);
  $("f-to").value = validDate(p.get("to")) || ymd(today);
  $("f-line").value = p.get("line") || "";
  $("f-manager").dataset.want = p.get("manager") || "";
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); load(); });
}

function validDate(s) { return s && /^\d{4}-\d{2}-\d{2}$/.test(s) ? s : ""; }

function fillManagers() {
  const sel = $("f-manager");
  const want = sel.value || sel.dataset.want || "";
  sel.replaceChildren();
  const all = el("option", "", t("allManagers"));
  all.value = "";
  sel.append(all);
  for (const m of [...managers].sort((a, b) => String(a.login).localeCompare(String(b.login)))) {
    const o = el("option", "", m.name && m.name !== m.login ? `${m.name} (${m.login})` : m.login);
    o.value = m.login;
    sel.append(o);
  }
  if (want && ![...sel.options].some((o) => o.value === want)) {
    const o = el("option", "", want);
    o.value = want;
    sel.append(o);
  }
  sel.value = want;
  sel.dataset.want = "";
}

// The range goes to the server as bare days, YYYY-MM-DD: it reads them in the
// desk's zone, the one its per-day rows are counted in, and a bare "to" covers
// that whole day.
function params(extra) {
  const p = new URLSearchParams({ from: query.from, to: query.to });
  if (query.manager) p.set("manager", query.manager);
  if (query.line) p.set("line", query.line);
  for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
  return p.toString();
}

async function load() {
  const err = $("f-error");
  err.textContent = "";
  const from = validDate($("f-from").value);
  const to = validDate($("f-to").value);
  if (!from || !to || to < from) {
    err.textContent = t("badRange");
    return;
  }
  query = { from, to, manager: $("f-manager").value, line: $("f-line").value.trim() };
  history.replaceState(null, "", `?${params()}`);
  const box = $("reports");
  box.dataset.ready = "false";
  $("f-apply").disabled = true;
  await Promise.all(REPORTS.map(async (name) => {
    let res;
    try { res = await api("GET", `/api/reports/${name}?${params()}`); } catch { res = { status: 0 }; }
    results.set(name, res.ok && res.data && Array.isArray(res.data.tables)
      ? { ok: true, data: res.data }
      : { ok: false, error: (res.data && res.data.error) || (res.status ? `HTTP ${res.status}` : t("offline")) });
  }));
  $("f-apply").disabled = false;
  collectLines();
  renderAll();
  box.dataset.ready = "true";
}

function collectLines() {
  const src = results.get("sources");
  const tbl = src && src.ok ? findTable(src.data, "lines") : null;
  if (tbl) for (const row of tbl.rows || []) if (row[0]) lines.add(String(row[0]));
  if (query.line) lines.add(query.line);
  const dl = $("f-lines");
  dl.replaceChildren();
  for (const l of [...lines].sort()) {
    const o = el("option");
    o.value = l;
    dl.append(o);
  }
}

// ---- rendering ----

function renderAll() {
  if (!query) return;
  const box = $("reports");
  for (const c of charts.values()) c.destroy();
  charts.clear();
  box.replaceChildren();
  for (const name of REPORTS) box.append(renderReport(name));
  // Charts measure their boxes, so they draw once the sections are in the page.
  for (const name of REPORTS) drawCharts(name);
}

function renderReport(name) {
  const sec = el("section", "panel report");
  sec.id = `report-${name}`;
  sec.dataset.report = name;
  const head = el("div", "report-head");
  head.append(el("h2", "", t(`report_${name}`)));
  sec.append(head);
  const res = results.get(name);
  if (!res) return sec;
  if (!res.ok) {
    sec.dataset.state = "error";
    sec.append(el("p", "error", `${t("reportFailed")}: ${res.error}`));
    return sec;
  }
  sec.dataset.state = "ok";
  for (const spec of CHARTS[name] || []) {
    const holder = el("div", "chart");
    holder.dataset.chart = spec.id;
    holder.append(el("h3", "", t(spec.title)));
    const boxEl = el("div", "chart-box");
    const canvas = el("canvas");
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", t(spec.title));
    boxEl.append(canvas);
    holder.append(boxEl);
    sec.append(holder);
  }
  for (const tbl of res.data.tables) sec.append(renderTable(name, tbl));
  return sec;
}

function renderTable(report, tbl) {
  const wrap = el("div", "report-table");
  wrap.dataset.table = tbl.name;
  const h = el("h3", "", t(`rt_${report}_${tbl.name}`) !== `rt_${report}_${tbl.name}` ? t(`rt_${report}_${tbl.name}`) : tbl.name);
  const csv = el("a", "csv", "CSV");
  csv.href = `/api/reports/${encodeURIComponent(report)}?${params({ format: "csv", table: tbl.name })}`;
  csv.setAttribute("download", `${report}-${tbl.name}.csv`);
  h.append(csv);
  wrap.append(h);
  const scroller = el("div", "table-wrap");
  const table = el("table", "grid compact");
  const thead = el("thead");
  const hr = el("tr");
  for (const c of tbl.columns || []) {
    const th = el("th", "", colName(c));
    th.dataset.col = c;
    hr.append(th);
  }
  thead.append(hr);
  const tbody = el("tbody");
  for (const row of tbl.rows || []) {
    const tr = el("tr");
    (tbl.columns || []).forEach((c, i) => {
      const v = row[i];
      const td = el("td", typeof v === "number" ? "num" : "", cell(c, v));
      td.dataset.col = c;
      td.dataset.value = v === null || v === undefined ? "" : String(v);
      tr.append(td);
    });
    tbody.append(tr);
  }
  table.append(thead, tbody);
  scroller.append(table);
  wrap.append(scroller);
  if (!(tbl.rows || []).length) wrap.append(el("p", "empty", t("noRows")));
  return wrap;
}

function colName(c) {
  const k = `rc_${c}`;
  if (t(k) !== k) return t(k);
  const s = `stage_${c}`;
  return t(s) !== s ? t(s) : c;
}

function isRate(col) { return /(^|_)(rate|share)$/.test(col); }

function num(v, digits) {
  return new Intl.NumberFormat(currentLang() === "ru" ? "ru-RU" : "en-US", { maximumFractionDigits: digits }).format(v);
}

// label translates the values the server keeps as ids: stages, reasons, the pool.
function label(v) {
  const s = String(v);
  for (const prefix of ["stage_", "reason_", "src_"]) if (t(prefix + s) !== prefix + s) return t(prefix + s);
  if (s === "pool" || s === "unknown" || s === "unspecified") return t(`v_${s}`);
  return s;
}

function cell(col, v) {
  if (v === null || v === undefined || v === "") return "";
  if (typeof v === "number") return isRate(col) ? `${num(v * 100, 1)}%` : num(v, 2);
  if (/stage$|^reason$|^source$|^manager$|^preset_source$/.test(col)) return label(v);
  return String(v);
}

function findTable(data, name) {
  return (data.tables || []).find((x) => x.name === name) || null;
}

function column(tbl, name) {
  const i = (tbl.columns || []).indexOf(name);
  return i < 0 ? null : (tbl.rows || []).map((r) => (typeof r[i] === "number" ? r[i] : r[i] === null ? null : Number(r[i]) || 0));
}

function color(name, i) { return COLORS[name] || PALETTE[i % PALETTE.length]; }

// tableChart builds a Chart.js config from a table: the first column labels the
// axis, the spec's columns are the series (numeric columns when the table differs).
function tableChart(report, spec, data) {
  const tbl = findTable(data, spec.table) || (data.tables || [])[0];
  if (!tbl) return null;
  let series = spec.series.filter((s) => (tbl.columns || []).includes(s));
  if (!series.length) {
    series = (tbl.columns || []).slice(1).filter((c, i) => (tbl.rows || []).some((r) => typeof r[i + 1] === "number") && !isRate(c));
  }
  const labels = (tbl.rows || []).map((r) => (report === "calls" && spec.table === "per_hour" ? `${String(r[0]).padStart(2, "0")}:00` : label(r[0])));
  const datasets = series.map((s, i) => ({
    label: colName(s), data: column(tbl, s), backgroundColor: color(s, i), borderColor: color(s, i),
    type: spec.type, tension: 0.25, pointRadius: spec.type === "line" ? 2 : 0, yAxisID: "y",
  }));
  const scales = { x: { stacked: !!spec.stacked }, y: { beginAtZero: true, stacked: !!spec.stacked, ticks: { precision: 0 } } };
  if (spec.line && (tbl.columns || []).includes(spec.line)) {
    datasets.push({ label: colName(spec.line), data: column(tbl, spec.line), type: "line", yAxisID: "y2",
      borderColor: color(spec.line, 5), backgroundColor: color(spec.line, 5), pointRadius: 4, showLine: false });
    scales.y2 = { beginAtZero: true, position: "right", grid: { drawOnChartArea: false } };
  }
  return { type: spec.type, data: { labels, datasets }, options: { scales } };
}

// funnelChart: how many interests reached each stage, and how many were lost there.
function funnelChart(report, spec, data) {
  const conv = findTable(data, "conversion");
  const loss = findTable(data, "loss");
  if (!conv) return tableChart(report, { table: "open", type: "bar", series: [], stacked: true }, data);
  const ci = (n) => conv.columns.indexOf(n);
  const stages = [];
  const reached = [];
  for (const r of conv.rows || []) { stages.push(r[ci("from_stage")]); reached.push(Number(r[ci("reached_from")]) || 0); }
  const lastRow = (conv.rows || [])[(conv.rows || []).length - 1];
  if (lastRow) { stages.push(lastRow[ci("to_stage")]); reached.push(Number(lastRow[ci("reached_to")]) || 0); }
  const lost = stages.map((s) => {
    const row = loss && (loss.rows || []).find((r) => r[0] === s);
    return row ? Number(row[1]) || 0 : 0;
  });
  return {
    type: "bar",
    data: {
      labels: stages.map(label),
      datasets: [
        { label: t("rc_reached"), data: reached, backgroundColor: COLORS.reached },
        { label: t("rc_lost"), data: lost, backgroundColor: COLORS.lost },
      ],
    },
    options: { indexAxis: "y", scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
  };
}

function drawCharts(name) {
  const res = results.get(name);
  if (!res || !res.ok) return;
  const sec = $(`report-${name}`);
  for (const spec of CHARTS[name] || []) {
    const canvas = sec.querySelector(`[data-chart="${spec.id}"] canvas`);
    if (!canvas) continue;
    if (typeof window.Chart !== "function") {
      canvas.parentElement.replaceWith(el("p", "error", t("chartsUnavailable")));
      continue;
    }
    const cfg = (spec.build || tableChart)(name, spec, res.data);
    if (!cfg) continue;
    cfg.options = {
      ...cfg.options,
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      plugins: { legend: { position: "bottom" } },
    };
    charts.set(`${name}/${spec.id}`, new window.Chart(canvas, cfg));
  }
}
