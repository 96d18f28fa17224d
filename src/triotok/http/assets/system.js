// The operators' page: draws GET /system/tree, /system/mode and /system/plugins, refreshed every 2 s.
//
// Authentication: the page itself is public and holds no data. The operator
// types an admin key of the operator tenant once (or opens the page as
// /system#key=<key>); it lives in this tab's sessionStorage only and goes out
// as "Authorization: Bearer" on the page's own fetches. A fragment never
// reaches the server or its logs, and is removed from the address bar at once.
//
// Every value from the server is written with textContent, never as HTML.
"use strict";

(function () {
  const STORAGE = "triotok.apiKey";
  const REFRESH_MS = 2000;
  const $ = (id) => document.getElementById(id);
  let timer = null;
  let lastTree = null;
  let inFlight = false;

  function key() {
    return sessionStorage.getItem(STORAGE);
  }

  function takeKeyFromFragment() {
    const params = new URLSearchParams(location.hash.slice(1));
    const fromUrl = params.get("key");
    if (fromUrl) {
      sessionStorage.setItem(STORAGE, fromUrl);
      history.replaceState(null, "", location.pathname + location.search);
    }
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function say(text, kind) {
    const box = $("message");
    box.textContent = text || "";
    box.className = kind || "";
    box.hidden = !text;
  }

  function showLogin(reason) {
    stop();
    lastTree = null;
    $("tree").replaceChildren();
    $("summary").textContent = "";
    $("toolbar").hidden = true;
    $("login").hidden = false;
    say(reason, reason ? "error" : "");
    $("key").focus();
  }

  function showTree() {
    $("login").hidden = true;
    $("toolbar").hidden = false;
  }

  async function api(method, url, body) {
    const headers = { Authorization: "Bearer " + key(), Accept: "application/json" };
    const init = { method: method, headers: headers, cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(url, init);
    let answer = null;
    try {
      answer = await response.json();
    } catch (_) {
      answer = null;
    }
    return check(response, answer);
  }

  function check(response, body) {
    if (response.status === 401 || response.status === 403) {
      const detail = body && body.detail ? body.detail : "not allowed";
      showLogin(
        "The key was refused (" + response.status + ": " + detail + "). " +
          "Use an admin key of the operator tenant."
      );
      throw new Error("refused");
    }
    if (!response.ok) {
      const detail = body && body.detail ? body.detail : response.statusText;
      throw new Error(response.status + " " + (body && body.code ? body.code + ": " : "") + detail);
    }
    return body;
  }

  // ---------------------------------------------------------------- rendering

  function matches(node, prefix, state) {
    return (!prefix || node.path.startsWith(prefix)) && (!state || node.state === state);
  }

  // The node if it or a descendant matches the filters, pruned to what matches.
  function prune(node, prefix, state) {
    const children = (node.children || []).map((c) => prune(c, prefix, state)).filter(Boolean);
    if (!matches(node, prefix, state) && children.length === 0) return null;
    return Object.assign({}, node, { children: children, dimmed: !matches(node, prefix, state) });
  }

  function count(node, acc) {
    acc.total += 1;
    acc[node.state] = (acc[node.state] || 0) + 1;
    (node.children || []).forEach((c) => count(c, acc));
    return acc;
  }

  function fmtMs(seconds) {
    return seconds === null || seconds === undefined ? "–" : (seconds * 1000).toFixed(2) + " ms";
  }

  function fact(label, value, className) {
    const span = el("span", "fact" + (className ? " " + className : ""));
    span.append(el("span", "label", label + " "), el("span", "value", value));
    return span;
  }

  function progress(name, stats) {
    // A rebuild: a <progress> bar (no inline style: the page runs under a strict CSP).
    const box = el("span", "fact rebuild");
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = Math.min(100, Math.max(0, Number(stats.percent) || 0));
    const eta = stats.status === "running" && typeof stats.eta_s === "number"
      ? ", ETA " + Math.round(stats.eta_s) + " s" : "";
    const text = stats.percent + "% " + stats.rows_done + "/" + stats.rows_total + " rows, "
      + Math.round(stats.rows_per_s) + " rows/s" + eta + (stats.status === "running" ? "" : " (" + stats.status + ")");
    bar.title = text;
    box.append(el("span", "label", name + " "), bar, el("span", "value", " " + text));
    return box;
  }

  function components(node) {
    const out = [];
    const parts = node.components || {};
    for (const name of Object.keys(parts).sort()) {
      const stats = parts[name];
      if (stats && typeof stats === "object" && typeof stats.state === "string") {
        const badge = el("span", "breaker breaker-" + stats.state.replace(/[^a-z_]/g, ""));
        badge.textContent = "breaker " + name + ": " + stats.state;
        out.push(badge);
        const tripped = stats.state !== "closed" && stats.state !== "disabled";
        // -1 (resilience4j's convention): fewer calls buffered than the rate needs.
        if (typeof stats.failure_rate === "number" && stats.failure_rate >= 0) {
          out.push(fact("failure rate", stats.failure_rate.toFixed(1) + "%", tripped ? "warn" : ""));
        }
        if (typeof stats.buffered_calls === "number") {
          const calls =
            stats.successful_calls + " ok, " + stats.failed_calls + " failed, " +
            stats.not_permitted_calls + " rejected";
          out.push(fact("calls", calls, stats.not_permitted_calls ? "warn" : ""));
        }
      } else if (stats && typeof stats === "object" && stats.rebuild_id !== null && "rows_total" in stats) {
        out.push(progress(name, stats));
      } else if (stats && typeof stats === "object" && typeof stats.lag_events === "number") {
        const lag = stats.lag_events + " events, " + stats.lag_seconds + " s";
        out.push(fact("lag", lag, stats.lag_events > 0 ? "warn" : ""));
      } else if (stats && typeof stats === "object" && typeof stats.mode === "string") {
        const badge = el("span", "mode-badge mode-" + stats.mode.replace(/[^a-z_]/g, ""));
        badge.textContent = "mode " + stats.mode;
        if (stats.reasons && stats.reasons.length) badge.title = stats.reasons.join(", ");
        out.push(badge);
      } else if (stats && typeof stats === "object" && "hits" in stats) {
        out.push(
          fact(name, stats.size + " cached, " + stats.hits + " hits / " + stats.misses + " misses")
        );
      }
    }
    return out;
  }

  function actions(node, root) {
    const box = el("span", "actions");
    if (node.path === root) return box;
    for (const action of ["restart", "stop"]) {
      const button = el("button", "action action-" + action, action);
      button.type = "button";
      button.dataset.action = action;
      button.dataset.path = node.path;
      box.append(button);
    }
    return box;
  }

  function row(node, root) {
    const line = el("div", "node" + (node.dimmed ? " dimmed" : ""));
    line.dataset.path = node.path;
    line.dataset.state = node.state;
    const name = el("span", "name", node.name);
    name.title = node.path;
    line.append(
      name,
      el("span", "kind", node.kind),
      el("span", "badge state-" + node.state, node.state)
    );
    const stats = node.statistics;
    if (stats) {
      const depth = fact("mailbox", stats.mailbox_depth + "/" + stats.capacity);
      if (stats.capacity && stats.mailbox_depth / stats.capacity >= 0.8) depth.classList.add("warn");
      line.append(
        depth,
        fact("processed", stats.processed),
        fact("failed", stats.failed, stats.failed ? "warn" : ""),
        fact("p99", fmtMs(stats.latency_p99))
      );
    } else if (node.strategy) {
      line.append(fact("strategy", node.strategy + " " + node.intensity + "/" + node.period + "s"));
    }
    line.append(fact("restarts", node.restarts, node.restarts ? "warn" : ""));
    line.append(...components(node));
    if (node.last_error) {
      const error = node.last_error;
      const text = typeof error === "object" ? error.type + ": " + error.message : String(error);
      line.append(el("span", "error", text));
    }
    line.append(actions(node, root));
    return line;
  }

  function branch(node, root) {
    const item = el("li");
    item.append(row(node, root));
    if (node.children && node.children.length) {
      const list = el("ul");
      node.children.forEach((child) => list.append(branch(child, root)));
      item.append(list);
    }
    return item;
  }

  function render() {
    if (!lastTree) return;
    const prefix = $("filter").value.trim();
    const state = $("state").value;
    const shown = prune(lastTree, prefix, state);
    const tree = $("tree");
    if (!shown) {
      tree.replaceChildren(el("p", "muted", "No actor matches the filter."));
    } else {
      const list = el("ul", "tree");
      list.append(branch(shown, lastTree.path));
      tree.replaceChildren(list);
    }
    const counts = count(lastTree, { total: 0 });
    const parts = [counts.total + " actors"];
    for (const s of ["running", "starting", "backoff", "restarting", "stopping", "stopped", "failed"]) {
      if (counts[s]) parts.push(counts[s] + " " + s);
    }
    $("summary").textContent = parts.join(" · ");
  }

  function renderMode(view) {
    const box = $("mode");
    const name = $("mode-name");
    name.textContent = view.mode;
    name.className = "mode-badge mode-" + String(view.mode).replace(/[^a-z_]/g, "");
    box.dataset.mode = view.mode;
    const why = (view.reasons || []).map((r) => r.signal + ": " + r.detail);
    if (view.override) {
      why.push(
        "override by " + view.override.actor +
          (view.override.expires_at ? " until " + view.override.expires_at : " until lifted")
      );
    }
    if (view.computed !== view.mode) why.push("signals alone: " + view.computed);
    $("mode-why").textContent = why.length ? "(" + why.join("; ") + ")" : "(every signal is clear)";
    box.hidden = false;
  }

  // ---------------------------------------------------------------- plugins

  const PLUGIN_ACTIONS = {
    discovered: ["enable"],
    disabled: ["enable"],
    failed: ["restart", "disable"],
    enabled: ["disable"],
    running: ["restart", "disable"],
  };

  function pluginRow(plugin) {
    const line = el("tr", "plugin");
    line.dataset.plugin = plugin.name;
    line.dataset.pluginState = plugin.state;
    const name = el("td", "name", plugin.name);
    name.title = plugin.description || plugin.source;
    const reason = el("td", "error", plugin.reason || "");
    const buttons = el("td", "actions");
    for (const action of PLUGIN_ACTIONS[plugin.state] || []) {
      if (!plugin.version) continue; // refused at discovery: nothing to do but read why
      const button = el("button", "action action-" + action, action);
      button.type = "button";
      button.dataset.pluginAction = action;
      button.dataset.plugin = plugin.name;
      buttons.append(button);
    }
    const state = el("td");
    state.append(el("span", "badge state-" + plugin.state, plugin.state));
    line.append(
      name,
      state,
      el("td", "", plugin.version || "–"),
      el("td", "", plugin.isolation || "–"),
      el("td", "", plugin.tenants),
      el("td", plugin.restarts ? "warn" : "", plugin.restarts),
      el("td", "", plugin.breaker || "–"),
      reason,
      buttons
    );
    return line;
  }

  function renderPlugins(items) {
    $("plugins").hidden = false;
    $("plugin-rows").replaceChildren(...items.map(pluginRow));
  }

  async function actOnPlugin(action, name) {
    if (!window.confirm(action[0].toUpperCase() + action.slice(1) + " the plugin " + name + "?")) {
      return;
    }
    try {
      const url = "/system/plugins/" + encodeURIComponent(name) + "/" + action;
      const result = await api("POST", url, action === "enable" ? {} : undefined);
      const why = result.reason ? " (" + result.reason + ")" : "";
      say(action + " " + name + ": " + result.state + why, "ok");
    } catch (err) {
      if (err.message !== "refused") say(action + " " + name + " failed: " + err.message, "error");
    }
    refresh();
  }

  // ---------------------------------------------------------------- refresh loop

  async function refresh() {
    if (!key() || inFlight) return;
    inFlight = true;
    try {
      const [tree, plugins] = await Promise.all([
        api("GET", "/system/tree"),
        api("GET", "/system/plugins"),
      ]);
      lastTree = tree;
      showTree();
      render();
      try {
        renderMode(await api("GET", "/system/mode"));
      } catch (err) {
        $("mode").hidden = true; // an application composed without the modes module
      }
      renderPlugins(plugins.items);
      const now = new Date();
      $("updated").textContent = "last updated " + now.toLocaleTimeString();
      $("updated").dataset.at = now.toISOString();
      $("updated").className = "muted";
      if ($("message").className === "stale") say("");
    } catch (err) {
      if (err.message !== "refused") {
        $("updated").className = "stale";
        say("Update failed (" + err.message + "); showing the last tree.", "stale");
      }
    } finally {
      inFlight = false;
    }
  }

  function schedule() {
    stop();
    if ($("auto").checked && key()) {
      timer = setInterval(refresh, REFRESH_MS);
    }
  }

  function stop() {
    if (timer !== null) clearInterval(timer);
    timer = null;
  }

  async function act(action, path) {
    if (!window.confirm(action[0].toUpperCase() + action.slice(1) + " the actor " + path + "?")) {
      return;
    }
    try {
      const result = await api("POST", "/system/actors/" + action + "?path=" + encodeURIComponent(path));
      say(action + " " + path + ": " + (result.state || result.requested || "done"), "ok");
    } catch (err) {
      if (err.message !== "refused") say(action + " " + path + " failed: " + err.message, "error");
    }
    refresh();
  }

  function start() {
    takeKeyFromFragment();
    $("login").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = $("key").value.trim();
      if (!value) return;
      sessionStorage.setItem(STORAGE, value);
      $("key").value = "";
      say("");
      refresh();
      schedule();
    });
    $("logout").addEventListener("click", () => {
      sessionStorage.removeItem(STORAGE);
      showLogin("");
    });
    $("filter").addEventListener("input", render);
    $("state").addEventListener("change", render);
    $("auto").addEventListener("change", schedule);
    $("tree").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (button) act(button.dataset.action, button.dataset.path);
    });
    $("plugins").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-plugin-action]");
      if (button) actOnPlugin(button.dataset.pluginAction, button.dataset.plugin);
    });
    if (key()) {
      refresh();
      schedule();
    } else {
      showLogin("");
    }
  }

  document.addEventListener("DOMContentLoaded", start);
})();
