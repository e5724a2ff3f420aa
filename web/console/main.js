// The console: sign-in, then one view per hash route. Each view asks the API and draws the answer; the
// API enforces every rule and scope, the console only hides what it knows the administrator cannot do.

import { api, signIn, signOut, whenSignedOut, query } from "./api.js";
import { h, fill, field, select, table, problem, notice, act, when, json } from "./ui.js";
import { barChart } from "./chart.js";

const $ = (id) => document.getElementById(id);

/** What the signed-in administrator is: id, name, scope roots and the regions they cover. */
const me = { id: null, name: "", national: false, roots: [], inScope: new Set() };
const catalog = { regions: [], types: [] };

// ---- Sign-in ----------------------------------------------------------------------------------

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const out = $("signin-problem");
  fill(out);
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    await signIn(form.phone.value.trim(), form.password.value);
    form.password.value = "";
    await loadIdentity();
    showConsole();
  } catch (e) {
    await signOut();
    fill(out, problem(e));
  } finally {
    button.disabled = false;
  }
});

$("signout").addEventListener("click", () => signOut());

whenSignedOut(() => {
  $("console").hidden = true;
  $("signin").hidden = false;
  fill($("who"));
  $("phone").focus();
});

async function loadIdentity() {
  const profile = await api("GET", "/me");
  if (!profile.roles.includes("admin")) {
    throw Object.assign(new Error("This account is not an administrator."), { code: "forbidden", status: 403 });
  }
  const [grants, regions, types] = await Promise.all([
    api("GET", "/admin/role-grants" + query({ user_id: profile.user_id })),
    api("GET", "/regions"),
    api("GET", "/activity-types"),
  ]);
  me.id = profile.user_id;
  me.name = profile.display_name;
  me.national = grants.items.some((g) => g.role === "admin");
  me.roots = grants.items.map((g) => g.region_code);
  catalog.regions = regions.items;
  catalog.types = types.items;
  me.inScope = new Set();
  const children = new Map();
  for (const r of regions.items) {
    if (!children.has(r.parent_code)) children.set(r.parent_code, []);
    children.get(r.parent_code).push(r.code);
  }
  const stack = [...me.roots];
  while (stack.length) {
    const code = stack.pop();
    if (me.inScope.has(code)) continue;
    me.inScope.add(code);
    stack.push(...(children.get(code) || []));
  }
}

function showConsole() {
  $("signin").hidden = true;
  $("console").hidden = false;
  const scope = me.national ? "national administrator" : `region administrator of ${me.roots.join(", ")}`;
  fill($("who"), `${me.name} · ${scope}`);
  document.body.classList.toggle("national", me.national);
  for (const a of document.querySelectorAll("[data-national]")) a.hidden = !me.national;
  route();
}

const covers = (region) => me.inScope.has(region);
const regionName = (code) => catalog.regions.find((r) => r.code === code)?.name ?? code;
const regionOptions = (onlyScope, blank) => [
  ...(blank ? [["", blank]] : []),
  ...catalog.regions.filter((r) => !onlyScope || covers(r.code)).map((r) => [r.code, `${r.code} ${r.name}`]),
];
const typeOptions = (blank) => [...(blank ? [["", blank]] : []), ...catalog.types.map((t) => [t.code, `${t.code} — ${t.name}`])];

// ---- Routing ----------------------------------------------------------------------------------

const views = {
  methodologies: methodologiesView,
  editor: editorView,
  approve: approveView,
  "region-parameters": regionParametersView,
  "activity-types": activityTypesView,
  reviews: reviewsView,
  partners: partnersView,
  audit: auditView,
};

window.addEventListener("hashchange", () => route());

function route() {
  if ($("console").hidden) return;
  const [name, arg] = location.hash.replace(/^#\/?/, "").split("/");
  const view = views[name] ? name : "methodologies";
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.view === view || (view === "editor" && a.dataset.view === "editor") || (view === "approve" && a.dataset.view === "methodologies")) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const main = $("main");
  fill(main, h("p", { class: "loading" }, "Loading…"));
  views[view](main, arg ? decodeURIComponent(arg) : undefined).catch((e) => fill(main, problem(e)));
}

function heading(main, title, ...intro) {
  const h2 = h("h2", { tabindex: "-1" }, title);
  fill(main, h2, intro.length ? h("p", { class: "intro" }, ...intro) : null);
  h2.focus();
  return main;
}

function filters(onApply, ...fields) {
  const form = h("form", { class: "filters", role: "search" }, fields, h("button", { type: "submit" }, "Apply"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    onApply(Object.fromEntries(new FormData(form)));
  });
  return form;
}

// ---- Methodologies ----------------------------------------------------------------------------

async function methodologiesView(main) {
  heading(main, "Methodologies", "Versions by activity type and region. Drafts are activated by a second administrator.");
  const list = h("div", { id: "methodology-list" });
  const load = async (f) => {
    fill(list, h("p", { class: "loading" }, "Loading…"));
    const page = await api("GET", "/methodologies" + query({ ...f, limit: 200 }));
    const groups = new Map();
    for (const v of page.items) {
      const key = `${v.activity_type} · ${v.region_code} ${regionName(v.region_code)}`;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(v);
    }
    fill(list, groups.size ? [...groups].map(([key, versions]) => versionTable(key, versions)) : notice("No versions match."));
  };
  main.append(
    filters(
      (f) => load(f).catch((e) => fill(list, problem(e))),
      field("Activity type", select("activity_type", typeOptions("All types"))),
      field("Region", select("region_code", regionOptions(false, "All regions"))),
      field("Status", select("status", [["", "All statuses"], ["draft", "draft"], ["active", "active"], ["retired", "retired"]])),
    ),
    h("p", {}, h("a", { href: "#/editor", class: "button" }, "New draft")),
    list,
  );
  await load({});
}

function versionTable(caption, versions) {
  const out = h("div", { class: "row-outcome" });
  const rows = versions
    .sort((a, b) => b.version - a.version)
    .map((v) => [
      `v${v.version}`,
      h("span", { class: `status ${v.status}` }, v.retire_requested_by ? "retire pending" : v.status),
      `${when(v.effective_from)} → ${v.effective_to ? when(v.effective_to) : "open"}`,
      h("code", {}, v.formula),
      versionActions(v, out),
    ]);
  return h("section", { class: "group" }, table(caption, ["Version", "Status", "In force", "Formula", "Actions"], rows), out);
}

function versionActions(v, out) {
  if (!covers(v.region_code)) return h("span", { class: "muted" }, "outside your scope");
  const mine = v.drafted_by === me.id;
  const actions = [];
  if (v.status === "draft") {
    if (mine) actions.push(h("a", { href: `#/editor/${v.id}` }, "Edit"));
    actions.push(h("a", { href: `#/approve/${v.id}` }, mine ? "Diff" : "Review and activate"));
  } else if (v.status === "active" && !v.retire_requested_by) {
    const b = h("button", { type: "button" }, `Request retirement of v${v.version}`);
    b.addEventListener("click", () => act(b, out, async () => {
      await api("POST", `/admin/methodologies/${v.id}/retire`);
      return notice(`Retirement of v${v.version} requested; a second administrator must approve it.`);
    }));
    actions.push(b);
  } else if (v.retire_requested_by && v.retire_requested_by !== me.id) {
    const b = h("button", { type: "button" }, `Approve retirement of v${v.version}`);
    b.addEventListener("click", () => act(b, out, async () => {
      await api("POST", `/admin/methodologies/${v.id}/retire/approve`);
      return notice(`v${v.version} retired.`);
    }));
    actions.push(b);
  }
  return h("span", { class: "actions" }, actions);
}

// ---- Draft editor -----------------------------------------------------------------------------

function isoIn(days) {
  const d = new Date(Date.now() + days * 86400000);
  d.setUTCHours(16, 0, 0, 0); // midnight in Asia/Shanghai
  return d.toISOString().replace(".000Z", "Z");
}

function sampleFor(typeCode) {
  const type = catalog.types.find((t) => t.code === typeCode);
  const sample = {};
  for (const [name, spec] of Object.entries(type?.data_schema?.properties ?? {})) {
    const min = Number(spec.minimum ?? 0);
    sample[name] = Math.max(min, name.endsWith("_m") ? 5000 : name.endsWith("_s") ? 1200 : 10);
  }
  return JSON.stringify(sample, null, 2);
}

async function editorView(main, id) {
  const existing = id ? await api("GET", `/methodologies/${id}`) : null;
  if (existing && existing.status !== "draft") throw new Error(`Version ${id} is ${existing.status}, not a draft.`);
  heading(main, existing ? `Edit draft ${existing.activity_type} · ${existing.region_code} v${existing.version}` : "New methodology draft",
    "The formula is checked as you type; the preview quantifies the sample data with it.");
  const type = select("activity_type", typeOptions(), existing?.activity_type ?? catalog.types[0]?.code, { required: true });
  const region = select("region_code", regionOptions(true), existing?.region_code ?? me.roots[0], { required: true });
  const from = h("input", { name: "effective_from", value: existing?.effective_from ?? isoIn(1), required: true, autocomplete: "off" });
  const to = h("input", { name: "effective_to", value: existing?.effective_to ?? "", autocomplete: "off" });
  const formula = h("textarea", { name: "formula", rows: 3, spellcheck: "false", required: true, value: existing?.formula ?? "" });
  const parameters = h("textarea", { name: "parameters", rows: 6, spellcheck: "false", value: JSON.stringify(existing?.parameters ?? {}, null, 2) });
  const cap = h("input", { name: "daily_cap_g", type: "number", min: 0, step: 1, value: existing?.daily_cap_g ?? "" });
  const citation = h("textarea", { name: "citation", rows: 2, maxlength: 2000, value: existing?.citation ?? "" });
  const sample = h("textarea", { name: "sample", rows: 4, spellcheck: "false", value: sampleFor(type.value) });
  const evidence = select("evidence", [["self_report", "self report"], ["photo", "photo"], ["trace", "trace"], ["operator", "operator"]], "self_report");
  const status = h("div", { id: "formula-status", role: "status", "aria-live": "polite" });
  const marked = h("pre", { id: "formula-marked", class: "formula", "aria-hidden": "true" });
  const preview = h("div", { id: "preview", "aria-live": "polite" });
  const saved = h("div", { id: "save-outcome" });
  const simulation = h("section", { id: "simulation", hidden: !existing });
  formula.setAttribute("aria-describedby", "formula-status");

  let draftId = existing?.id ?? null;
  let seq = 0;
  let timer;
  const parseJson = (text, what) => {
    try {
      return [JSON.parse(text || "{}"), null];
    } catch {
      return [null, `${what} is not valid JSON.`];
    }
  };
  const check = async () => {
    const mine = ++seq;
    const [params, pErr] = parseJson(parameters.value, "Parameters");
    const [data, sErr] = parseJson(sample.value, "Sample data");
    if (pErr) return showCheck({ valid: false, problems: [{ field: "parameters", message: pErr }] });
    const body = {
      activity_type: type.value,
      region_code: region.value,
      formula: formula.value,
      parameters: params,
      ...(sErr ? {} : { sample: { data, evidence: evidence.value } }),
    };
    try {
      const result = await api("POST", "/admin/methodologies/validate", body);
      if (mine === seq) showCheck(result, sErr);
    } catch (e) {
      if (mine === seq) fill(status, problem(e));
    }
  };
  const showCheck = (result, sampleError) => {
    formula.setAttribute("aria-invalid", String(!result.valid));
    status.className = result.valid ? "valid" : "invalid";
    fill(status, result.valid
      ? h("p", { class: "ok" }, "✓ Formula valid", result.variables?.length ? ` — uses ${result.variables.join(", ")}` : "")
      : h("ul", { class: "problems" }, result.problems.map((p) => h("li", { class: "formula-problem" }, p.field === "formula" ? "" : `${p.field}: `, p.message))));
    const span = result.problems?.find((p) => p.field === "formula" && p.start !== undefined);
    const chars = [...formula.value];
    if (span) {
      const end = Math.max(span.end, span.start + 1);
      fill(marked, chars.slice(0, span.start).join(""), h("mark", {}, chars.slice(span.start, end).join("") || " "), chars.slice(end).join(""));
    } else fill(marked);
    if (sampleError) return fill(preview, problem(new Error(sampleError)));
    if (result.preview) {
      const p = result.preview;
      fill(preview,
        h("p", { class: "result" }, h("strong", {}, `${p.reduction_g} g`), ` CO₂e → ${p.points} points (${p.evidence}, ${p.points_per_gram} points/g)`),
        table("Breakdown for the sample", ["Step", "Expression", "Value"], p.breakdown.map((s, i) => [String(i), h("code", {}, s.expr), s.value])));
    } else if (result.preview_problem) {
      fill(preview, problem(Object.assign(new Error(result.preview_problem.message), result.preview_problem)));
    } else fill(preview);
  };
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(check, 250);
  };
  for (const el of [formula, parameters, sample]) el.addEventListener("input", later);
  for (const el of [region, evidence]) el.addEventListener("change", later);
  type.addEventListener("change", () => {
    sample.value = sampleFor(type.value);
    later();
  });

  const save = h("button", { type: "submit" }, existing ? "Save draft" : "Create draft");
  const form = h("form", { id: "draft-form", novalidate: true },
    h("fieldset", {}, h("legend", {}, "Scope and dates"),
      field("Activity type", type), field("Region", region),
      field("Effective from", from, "RFC 3339, e.g. 2026-12-08T00:00:00+08:00"),
      field("Effective to (optional)", to)),
    h("fieldset", {}, h("legend", {}, "Formula"),
      field("Formula", formula, "Names: parameters below, data fields of the type, region.NAME; + - * / ( ) min max"),
      marked, status,
      field("Parameters (JSON)", parameters, 'name → {"value": "decimal", "unit": "…", "source": "…"}'),
      field("Daily cap in grams (optional)", cap), field("Citation", citation)),
    h("fieldset", {}, h("legend", {}, "Preview with sample data"),
      field("Sample data (JSON)", sample), field("Evidence", evidence), preview),
    save, saved);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act(save, saved, async () => {
      const [params, pErr] = parseJson(parameters.value, "Parameters");
      if (pErr) throw new Error(pErr);
      const body = {
        activity_type: type.value, region_code: region.value, effective_from: from.value.trim(),
        effective_to: to.value.trim() || null, parameters: params, formula: formula.value,
        daily_cap_g: cap.value === "" ? null : Number(cap.value), citation: citation.value,
      };
      const version = draftId
        ? await api("PATCH", `/admin/methodologies/${draftId}`, body)
        : await api("POST", "/admin/methodologies", body);
      draftId = version.id;
      simulation.hidden = false;
      history.replaceState(null, "", `#/editor/${draftId}`);
      return notice(`Draft ${version.activity_type} · ${version.region_code} v${version.version} saved (id ${version.id}). Simulate it below, then ask a second administrator to activate it.`);
    });
  });
  main.append(form, simulation);
  simulationPanel(simulation, () => draftId);
  if (formula.value) check();
}

/** Simulation of a draft over a window, drawn as bars per region before anyone activates it. */
function simulationPanel(section, id) {
  const from = h("input", { name: "from", value: isoIn(-90), autocomplete: "off" });
  const to = h("input", { name: "to", value: isoIn(1), autocomplete: "off" });
  const go = h("button", { type: "button" }, "Simulate");
  const out = h("div", { id: "simulation-result", "aria-live": "polite" });
  go.addEventListener("click", () => act(go, out, async () => {
    const s = await api("POST", `/admin/methodologies/${id()}/simulate`, { from: from.value.trim(), to: to.value.trim() });
    const rows = s.by_region.map((r) => ({ label: `${r.region_code} ${regionName(r.region_code)}`, value: r.delta_g }));
    return h("div", {},
      h("p", { class: "result" }, `${s.activities} activities: ${s.current_total_g} g now → ${s.draft_total_g} g with the draft (Δ ${s.delta_g} g, Δ ${s.delta_points} points, ${s.people} people, ${s.skipped} skipped).`),
      barChart("Change in grams by region", [{ label: "All regions", value: s.delta_g }, ...rows], "g"),
      s.by_macro_region?.length ? table("By macro-region", ["Macro-region", "Activities", "Δ g", "Δ points"], s.by_macro_region.map((m) => [m.macro_region, String(m.activities), String(m.delta_g), String(m.delta_points)])) : null);
  }));
  fill(section, h("h3", {}, "Simulation"), h("div", { class: "filters" }, field("From", from), field("To", to), go), out);
}

// ---- Activation with the diff in view ---------------------------------------------------------

async function approveView(main, id) {
  const [v, diff] = await Promise.all([api("GET", `/methodologies/${id}`), api("GET", `/admin/methodologies/${id}/diff`)]);
  heading(main, `Review ${v.activity_type} · ${v.region_code} v${v.version}`, `Status: ${v.status}. Drafted by administrator ${v.drafted_by ?? "—"}.`);
  const show = (x) => (x === undefined || x === null ? "—" : h("code", {}, typeof x === "string" ? x : JSON.stringify(x)));
  main.append(
    h("p", {}, diff.replaces ? `Replaces v${diff.replaces.version} (id ${diff.replaces.id}).` : "Replaces no version: every term is new."),
    table("What this version changes", ["Term", "Before", "After"], diff.changes.map((c) => [c.field, show(c.before), show(c.after)])),
  );
  const out = h("div", { id: "activation-outcome" });
  if (v.status !== "draft") {
    main.append(notice(`This version is ${v.status}.`));
  } else if (!covers(v.region_code)) {
    main.append(notice("This draft is outside your scope."));
  } else if (v.drafted_by === me.id) {
    main.append(notice("You drafted this version: a second administrator must activate it."));
  } else {
    const b = h("button", { type: "button", id: "activate" }, `Activate v${v.version}`);
    b.addEventListener("click", () => act(b, out, async () => {
      const done = await api("POST", `/admin/methodologies/${id}/activate`);
      b.hidden = true;
      return notice(`v${done.version} is ${done.status} from ${when(done.effective_from)}.`);
    }));
    main.append(b);
  }
  const sim = h("section", {});
  main.append(out, sim);
  if (v.status === "draft" && covers(v.region_code)) simulationPanel(sim, () => id);
}

// ---- Region parameters ------------------------------------------------------------------------

async function regionParametersView(main) {
  heading(main, "Region parameters", "Versioned values per region; unset values inherit from the parent region.");
  const list = h("div", {});
  const out = h("div", {});
  const load = async (f = {}) => {
    const page = await api("GET", "/admin/region-parameters" + query({ ...f, limit: 200 }));
    fill(list, table("Versions", ["Id", "Region", "Status", "Effective from", "Values", "Actions"], page.items.map((p) => [
      p.id, `${p.region_code} ${regionName(p.region_code)}`, h("span", { class: `status ${p.status}` }, p.status), when(p.effective_from),
      h("code", {}, Object.entries(p.values).map(([k, v]) => `${k}=${v}`).join(", ")),
      parameterActions(p, out, () => load(f)),
    ])));
  };
  const region = select("region_code", regionOptions(true), me.roots[0]);
  const from = h("input", { name: "effective_from", value: isoIn(1) });
  const values = h("textarea", { name: "values", rows: 3, spellcheck: "false", value: '{\n  "points_per_gram": "0.01"\n}' });
  const citation = h("input", { name: "citation", value: "" });
  const create = h("button", { type: "submit" }, "Create draft");
  const form = h("form", { class: "card" }, h("h3", {}, "New draft"), field("Region", region), field("Effective from", from, "RFC 3339"),
    field("Values (JSON: name → decimal string)", values), field("Citation", citation), create);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act(create, out, async () => {
      const body = { region_code: region.value, effective_from: from.value.trim(), values: JSON.parse(values.value), citation: citation.value || null };
      const p = await api("POST", "/admin/region-parameters", body);
      await load();
      return notice(`Draft ${p.id} for ${p.region_code} created; a second administrator activates it.`);
    });
  });
  main.append(
    filters((f) => load(f).catch((e) => fill(list, problem(e))), field("Region", select("region_code", regionOptions(false, "All regions"))),
      field("Status", select("status", [["", "All statuses"], ["draft", "draft"], ["active", "active"], ["retired", "retired"]]))),
    out, list, form);
  await load();
}

function parameterActions(p, out, reload) {
  if (!covers(p.region_code)) return h("span", { class: "muted" }, "outside your scope");
  if (p.status !== "draft") return "";
  if (p.drafted_by === me.id) {
    const del = h("button", { type: "button" }, `Delete draft ${p.id}`);
    del.addEventListener("click", () => act(del, out, async () => {
      await api("DELETE", `/admin/region-parameters/${p.id}`);
      await reload();
      return notice(`Draft ${p.id} deleted.`);
    }));
    return del;
  }
  const b = h("button", { type: "button" }, `Activate ${p.id}`);
  b.addEventListener("click", () => act(b, out, async () => {
    await api("POST", `/admin/region-parameters/${p.id}/activate`);
    await reload();
    return notice(`Region parameters ${p.id} activated.`);
  }));
  return b;
}

// ---- Activity types ---------------------------------------------------------------------------

async function activityTypesView(main) {
  heading(main, "Activity types", "Changes to a type wait for a second national administrator.");
  const types = await api("GET", "/activity-types");
  catalog.types = types.items;
  main.append(table("Types", ["Code", "Name", "Unit", "Data fields"], types.items.map((t) => [
    h("code", {}, t.code), t.name, t.unit, Object.keys(t.data_schema?.properties ?? {}).join(", ")])));
  if (!me.national) {
    main.append(notice("Proposing and approving changes to activity types needs a national administrator."));
    return;
  }
  const out = h("div", {});
  const pending = h("div", {});
  const load = async () => {
    const changes = await api("GET", "/admin/activity-type-changes" + query({ status: "pending" }));
    fill(pending, table("Pending changes", ["Change", "Type", "Proposed", "Requested", "Actions"], changes.items.map((c) => {
      let action = h("span", { class: "muted" }, "yours: another administrator approves");
      if (c.requested_by !== me.id) {
        action = h("button", { type: "button" }, `Approve change ${c.change_id}`);
        action.addEventListener("click", () => act(action, out, async () => {
          await api("POST", `/admin/activity-type-changes/${c.change_id}/approve`);
          await load();
          return notice(`Change ${c.change_id} approved.`);
        }));
      }
      return [c.change_id, c.activity_type, json(c.proposed), `${when(c.requested_at)} by ${c.requested_by}`, action];
    })));
  };
  const code = select("code", typeOptions());
  const change = h("textarea", { name: "change", rows: 3, spellcheck: "false", value: '{\n  "claim_window_days": 30\n}' });
  const propose = h("button", { type: "submit" }, "Propose change");
  const form = h("form", { class: "card" }, h("h3", {}, "Propose a change"), field("Activity type", code),
    field("Change (JSON)", change, "name, claim_window_days, travel, max_speed_kmh, data_schema"), propose);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act(propose, out, async () => {
      const c = await api("PATCH", `/admin/activity-types/${encodeURIComponent(code.value)}`, JSON.parse(change.value));
      await load();
      return notice(`Change ${c.change_id} is pending.`);
    });
  });
  main.append(out, pending, form);
  await load();
}

// ---- Review queue -----------------------------------------------------------------------------

async function reviewsView(main) {
  heading(main, "Review queue", "Flagged activities in your scope. Select some and decide them together.");
  const list = h("div", {});
  const out = h("div", { id: "review-outcome" });
  let current = {};
  const load = async (f = current) => {
    current = f;
    const page = await api("GET", "/admin/reviews" + query({ ...f, limit: 200 }));
    const boxes = [];
    const rows = page.items.map((a) => {
      const box = h("input", { type: "checkbox", value: a.activity_id, "aria-label": `Select activity ${a.activity_id}` });
      boxes.push(box);
      return [box, a.activity_id, a.activity_type, `${a.region_code} ${regionName(a.region_code)}`, when(a.occurred_at), a.reasons.join(", "), `${a.reduction_g} g`];
    });
    const all = h("input", { type: "checkbox", "aria-label": "Select all" });
    all.addEventListener("change", () => boxes.forEach((b) => (b.checked = all.checked)));
    const note = h("input", { name: "note", value: "" });
    const decide = (decision) => {
      const b = h("button", { type: "button" }, decision === "approve" ? "Approve selected" : "Reject selected");
      b.addEventListener("click", () => act(b, out, async () => {
        const ids = boxes.filter((x) => x.checked).map((x) => x.value);
        if (!ids.length) throw new Error("Select at least one activity.");
        const r = await api("POST", "/admin/reviews/decisions", { activity_ids: ids, decision, note: note.value }, { "Idempotency-Key": crypto.randomUUID() });
        await load();
        return table("Decisions", ["Activity", "Outcome", "Detail"], r.results.map((x) => [x.activity_id, x.status, x.error ? `${x.error.code}: ${x.error.detail}` : x.result?.status ?? ""]));
      }));
      return b;
    };
    fill(list, field("Select all", all), table("Flagged activities", ["", "Activity", "Type", "Region", "Occurred", "Reasons", "Reduction"], rows),
      h("div", { class: "filters" }, field("Note", note), decide("approve"), decide("reject")));
  };
  main.append(
    filters((f) => load(f).catch((e) => fill(list, problem(e))),
      field("Region", select("region_code", regionOptions(true, "All in scope"))),
      field("Activity type", select("activity_type", typeOptions("All types"))),
      field("Reason", h("input", { name: "reason", placeholder: "e.g. implausible_amount" }))),
    out, list);
  await load();
}

// ---- Partners and providers -------------------------------------------------------------------

async function partnersView(main) {
  heading(main, "Partners and providers", "Keys are rotated by adding a new one (its secret is shown once) and revoking the old.");
  const [partners, providers] = await Promise.all([api("GET", "/admin/partners?limit=200"), api("GET", "/admin/providers?limit=200")]);
  const out = h("div", { id: "key-outcome", "aria-live": "polite" });
  const rows = (owners, items, idOf) => items.map((o) => {
    const id = idOf(o);
    const inScope = o.region_codes.every(covers);
    const keys = h("ul", { class: "keys" }, o.keys.map((k) => {
      const li = h("li", {}, h("code", {}, k.key_id), ` since ${when(k.created_at)}`, k.revoked_at ? ` · revoked ${when(k.revoked_at)}` : "");
      if (!k.revoked_at && inScope) {
        const revoke = h("button", { type: "button" }, `Revoke ${k.key_id}`);
        revoke.addEventListener("click", () => {
          if (revoke.dataset.armed) {
            act(revoke, out, async () => {
              await api("POST", `/admin/${owners}/${id}/keys/${encodeURIComponent(k.key_id)}/revoke`);
              return notice(`Key ${k.key_id} revoked. Reload the page section to see it.`);
            });
          } else {
            revoke.dataset.armed = "1";
            revoke.textContent = `Confirm revoking ${k.key_id}`;
          }
        });
        li.append(" ", revoke);
      }
      return li;
    }));
    let rotate = h("span", { class: "muted" }, "outside your scope");
    if (inScope) {
      rotate = h("button", { type: "button" }, `New key for ${o.name}`);
      rotate.addEventListener("click", () => act(rotate, out, async () => {
        const c = await api("POST", `/admin/${owners}/${id}/keys`);
        return h("div", { class: "secret", role: "alert" }, h("p", {}, `New key for ${o.name}: `, h("code", {}, c.key_id)),
          h("p", {}, "Secret (shown once, copy it now): ", h("code", {}, c.secret)));
      }));
    }
    return [o.name, o.kind, o.region_codes.join(", "), keys, rotate];
  });
  main.append(out,
    table("Partners", ["Name", "Kind", "Regions", "Keys", "Rotate"], rows("partners", partners.items, (p) => p.partner_id)),
    table("Providers", ["Name", "Kind", "Regions", "Keys", "Rotate"], rows("providers", providers.items, (p) => p.provider_id)));
}

// ---- Audit log --------------------------------------------------------------------------------

const ENTITIES = ["activity", "activity_type", "activity_type_change", "methodology_version", "partner", "provider",
  "region_parameter_version", "role_grant", "user"];

async function auditView(main) {
  heading(main, "Audit log", "Every administrative change, newest first.");
  const body = h("tbody", {});
  const more = h("button", { type: "button", hidden: true }, "Load more");
  let f = {};
  let cursor = null;
  const load = async (append) => {
    const page = await api("GET", "/admin/audit" + query({ ...f, cursor: append ? cursor : null, limit: 50 }));
    if (!append) body.replaceChildren();
    for (const e of page.items) {
      const details = e.before || e.after
        ? h("details", {}, h("summary", {}, "before / after"), e.before ? json(e.before) : null, e.after ? json(e.after) : null)
        : "";
      body.append(h("tr", {}, [e.id, when(e.at), e.actor_id ?? "system", e.action, e.entity, e.entity_id].map((c) => h("td", {}, c)), h("td", {}, details)));
    }
    cursor = page.next_cursor;
    more.hidden = !cursor;
  };
  more.addEventListener("click", () => load(true).catch((e) => main.append(problem(e))));
  main.append(
    filters((values) => { f = values; load(false).catch((e) => main.append(problem(e))); },
      field("Actor id", h("input", { name: "actor_id", inputmode: "numeric" })),
      field("Entity", select("entity", [["", "All entities"], ...ENTITIES.map((x) => [x, x])])),
      field("Entity id", h("input", { name: "entity_id" })),
      field("From", h("input", { name: "from", placeholder: "RFC 3339" })),
      field("To", h("input", { name: "to", placeholder: "RFC 3339" }))),
    h("table", {}, h("caption", {}, "Entries"),
      h("thead", {}, h("tr", {}, ["Id", "At", "Actor", "Action", "Entity", "Entity id", "Change"].map((t) => h("th", { scope: "col" }, t)))), body),
    more);
  await load(false);
}
