/* docs.js -- renders /openapi.json on the /docs page: every route with its
 * summary, parameters, request body and responses (status, description,
 * schema).  No library, nothing from another origin (the page's
 * Content-Security-Policy allows this server only). */
"use strict";

function el(tag, attrs, children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children || []) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function resolve(doc, s) {
  while (s && s.$ref) s = s.$ref.split("/").slice(1).reduce((o, k) => o[k], doc);
  return s;
}

function schemaText(doc, s) {
  const name = s && s.$ref ? s.$ref.split("/").pop() : null;
  const r = resolve(doc, s);
  return (name ? name + " " : "") + JSON.stringify(r, null, 1);
}

function render(doc) {
  const main = document.getElementById("routes");
  main.replaceChildren();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const sec = el("section", { class: "route", "data-search": (method + " " + path + " " +
        (op.summary || "") + " " + Object.keys(op.responses || {}).join(" ")).toLowerCase() });
      sec.append(el("h2", {}, [el("span", { class: "method " + method }, [method.toUpperCase()]),
        el("code", {}, [path])]));
      sec.append(el("p", {}, [op.summary || ""]));
      if (op.description) sec.append(el("p", {}, [op.description]));
      if (op.parameters && op.parameters.length) {
        const t = el("table", {}, [el("tr", {}, [el("th", {}, ["parameter"]), el("th", {}, ["in"]),
          el("th", {}, ["description"])])]);
        for (const p of op.parameters)
          t.append(el("tr", {}, [el("td", {}, [el("code", {}, [p.name])]), el("td", {}, [p.in]),
            el("td", {}, [p.description || ""])]));
        sec.append(t);
      }
      if (op.requestBody) {
        const c = op.requestBody.content["application/json"];
        sec.append(el("h3", {}, ["Request body"]), el("pre", {}, [schemaText(doc, c.schema)]));
        if (c.example) sec.append(el("pre", {}, ["example: " + JSON.stringify(c.example)]));
      }
      const t = el("table", {}, [el("tr", {}, [el("th", {}, ["status"]), el("th", {}, ["description"]),
        el("th", {}, ["body"])])]);
      for (const [st, r] of Object.entries(op.responses || {})) {
        const c = r.content ? Object.entries(r.content)[0] : null;
        t.append(el("tr", {}, [el("td", {}, [st]), el("td", {}, [r.description || ""]),
          el("td", {}, [c ? el("code", {}, [c[0] + ": " + (c[1].schema && c[1].schema.$ref ?
            c[1].schema.$ref.split("/").pop() : (c[1].schema || {}).type || "")]) : ""])]));
      }
      sec.append(el("h3", {}, ["Responses"]), t);
      main.append(sec);
    }
  }
}

document.getElementById("filter").addEventListener("input", (ev) => {
  const q = ev.target.value.trim().toLowerCase();
  for (const s of document.querySelectorAll("section.route"))
    s.hidden = q !== "" && !s.dataset.search.includes(q);
});

fetch("/openapi.json", { credentials: "same-origin" })
  .then((r) => { if (!r.ok) throw new Error("GET /openapi.json answered " + r.status); return r.json(); })
  .then(render)
  .catch((e) => { document.getElementById("routes").replaceChildren(el("p", { role: "alert" }, [String(e)])); });
