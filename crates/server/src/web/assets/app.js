// Tierdesk agent app: progressive enhancement only. Every page works
// without this script; it adds live updates and keyboard shortcuts.
(function () {
  "use strict";

  var EVENT_TYPES = [
    "created", "customer_message", "agent_reply", "internal_note", "status_changed",
    "priority_changed", "tier_changed", "team_changed", "assignee_changed", "tag_added",
    "tag_removed", "sla_warning", "sla_breached", "escalated", "de_escalated",
    "runbook_step_recorded", "mail_queued", "mail_sent", "mail_failed"
  ];

  function $(selector, root) { return (root || document).querySelector(selector); }
  function $all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }

  function typing(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  function fragment(html) {
    var template = document.createElement("template");
    template.innerHTML = html;
    return template.content;
  }

  // --- help overlay ---------------------------------------------------------
  var help = $("#help");
  var helpButton = $("#help-button");
  var lastFocus = null;
  function showHelp() {
    if (!help) return;
    lastFocus = document.activeElement;
    help.hidden = false;
    var close = $("#help-close");
    if (close) close.focus();
  }
  function hideHelp() {
    if (!help || help.hidden) return;
    help.hidden = true;
    if (lastFocus && lastFocus.focus) lastFocus.focus();
  }
  if (helpButton) {
    helpButton.hidden = false;
    helpButton.addEventListener("click", showHelp);
  }
  if (help) {
    var closeButton = $("#help-close");
    if (closeButton) closeButton.addEventListener("click", hideHelp);
    help.addEventListener("click", function (e) { if (e.target === help) hideHelp(); });
  }

  // --- inbox: the bulk form folds away on a phone ---------------------------
  var bulkDetails = $("#bulk-details");
  if (bulkDetails && window.matchMedia && window.matchMedia("(max-width: 760px)").matches) {
    bulkDetails.open = false;
  }

  // --- inbox: selection -----------------------------------------------------
  var rowsBody = $("#ticket-rows");
  var selected = -1;
  function rows() { return rowsBody ? $all("tr[data-id]", rowsBody) : []; }
  function select(index) {
    var all = rows();
    if (!all.length) return;
    index = Math.max(0, Math.min(all.length - 1, index));
    all.forEach(function (tr) { tr.classList.remove("selected"); tr.removeAttribute("aria-selected"); });
    var row = all[index];
    row.classList.add("selected");
    row.setAttribute("aria-selected", "true");
    var link = $("a.open", row);
    if (link) link.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
    selected = index;
  }
  function selectedRow() {
    var all = rows();
    return selected >= 0 && selected < all.length ? all[selected] : null;
  }

  // --- ticket page: composer ------------------------------------------------
  var composer = $("#composer");
  function composerMode() {
    if (!composer) return;
    var note = $("#kind-note");
    composer.parentElement.classList.toggle("note-mode", !!(note && note.checked));
  }
  if (composer) {
    $all("input[name=kind]", composer).forEach(function (r) { r.addEventListener("change", composerMode); });
    composerMode();
  }
  function compose(kind) {
    var radio = $(kind === "note" ? "#kind-note" : "#kind-reply");
    if (radio) radio.checked = true;
    composerMode();
    var body = $("#body");
    if (body) { body.scrollIntoView({ block: "center" }); body.focus(); }
  }

  // --- keyboard -------------------------------------------------------------
  document.addEventListener("keydown", function (e) {
    if (e.key === "Tab" && help && !help.hidden) {
      // The dialog is modal: focus stays on its one control.
      var close = $("#help-close");
      if (close) { close.focus(); e.preventDefault(); }
      return;
    }
    if (e.key === "Escape") {
      if (help && !help.hidden) { hideHelp(); e.preventDefault(); return; }
      if (typing(e.target)) { e.target.blur(); return; }
    }
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) return;
    if (help && !help.hidden) return;
    var page = document.body.getAttribute("data-page");
    switch (e.key) {
      case "?":
        showHelp(); break;
      case "/":
        var q = $("#q");
        if (q) q.focus(); else window.location.href = "/inbox";
        break;
      case "j":
        if (page === "inbox") select(selected + 1); else return;
        break;
      case "k":
        if (page === "inbox") select(selected < 0 ? 0 : selected - 1); else return;
        break;
      case "x":
        var rowX = selectedRow();
        var box = rowX && $("input[type=checkbox]", rowX);
        if (box) box.checked = !box.checked; else return;
        break;
      case "o":
      case "Enter":
        var row = selectedRow();
        var focused = document.activeElement;
        // Enter on a focused button or link elsewhere keeps its own meaning.
        if (e.key === "Enter" && focused && focused !== document.body && !(row && row.contains(focused))) return;
        if (page === "inbox" && row) window.location.href = row.getAttribute("data-href");
        else return;
        break;
      case "r":
        if (page === "ticket") compose("reply"); else return;
        break;
      case "n":
        if (page === "ticket") compose("note"); else return;
        break;
      case "e":
        var esc = $("#escalate-link");
        if (esc) window.location.href = esc.getAttribute("href"); else return;
        break;
      case "u":
        if (page === "ticket" || page === "escalate") window.location.href = "/inbox"; else return;
        break;
      default:
        return;
    }
    e.preventDefault();
  });

  // --- live updates -----------------------------------------------------------
  function later(fn, ms) {
    var timer = null;
    return function () {
      if (timer) clearTimeout(timer);
      timer = setTimeout(function () { timer = null; fn(); }, ms);
    };
  }

  // The portal's new-request form: articles that may already answer the
  // subject, from the public knowledge base, before the customer sends it.
  var newSubject = document.body.getAttribute("data-page") === "portal" ? $("#subject") : null;
  var suggestBox = $("#kb-suggest");
  if (newSubject && suggestBox) {
    var lastAsked = "";
    newSubject.addEventListener("input", later(function () {
      var q = newSubject.value.trim();
      if (q.length < 4 || q === lastAsked) return;
      lastAsked = q;
      fetch("/api/v1/kb/search?limit=3&q=" + encodeURIComponent(q), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : { results: [] }; })
        .then(function (page) {
          var list = suggestBox.querySelector("ul");
          list.textContent = "";
          (page.results || []).forEach(function (hit) {
            var li = document.createElement("li");
            var a = document.createElement("a");
            a.href = "/help/a/" + encodeURIComponent(hit.slug);
            a.target = "_blank";
            a.rel = "noopener";
            a.textContent = hit.title;
            li.appendChild(a);
            list.appendChild(li);
          });
          suggestBox.hidden = !list.children.length;
        })
        .catch(function () { suggestBox.hidden = true; });
    }, 300));
  }

  var inbox = $("#inbox");
  var ticket = $("#ticket");
  if (!window.EventSource || (!inbox && !ticket)) return;

  var refreshCounts = later(function () {
    fetch("/inbox/counts", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (counts) {
        if (!counts) return;
        var all = $("[data-count=all]");
        if (all) all.textContent = counts.all;
        var capped = counts.capped || [];
        Object.keys(counts.views || {}).forEach(function (id) {
          var el = $("[data-count='" + id + "']");
          if (el) el.textContent = counts.views[id] + (capped.indexOf(id) >= 0 ? "+" : "");
        });
      })
      .catch(function () {});
  }, 300);

  // Screen readers hear what arrives live.
  var liveRegion = document.createElement("div");
  liveRegion.className = "visually-hidden";
  liveRegion.setAttribute("aria-live", "polite");
  document.body.appendChild(liveRegion);
  function announce(text) { liveRegion.textContent = text; }

  var pendingRows = {};
  function refreshRow(id) {
    if (pendingRows[id]) return;
    pendingRows[id] = true;
    setTimeout(function () {
      delete pendingRows[id];
      var params = inbox.getAttribute("data-row-params");
      var url = "/inbox/rows/" + id + (params ? "?" + params : "");
      fetch(url, { credentials: "same-origin" }).then(function (r) {
        var existing = $("tr[data-id='" + id + "']", rowsBody);
        if (r.status === 204) {
          if (existing) existing.remove();
          return null;
        }
        if (!r.ok) return null;
        return r.text().then(function (html) {
          var fresh = $("tr", fragment(html));
          if (!fresh) return;
          fresh.classList.add("fresh");
          if (existing) {
            var wasChecked = $("input[type=checkbox]", existing);
            var box = $("input[type=checkbox]", fresh);
            if (wasChecked && box) box.checked = wasChecked.checked;
            if (existing.classList.contains("selected")) fresh.classList.add("selected");
            existing.replaceWith(fresh);
          } else if (inbox.getAttribute("data-first-page") === "yes") {
            rowsBody.insertBefore(fresh, rowsBody.firstChild);
            announce("New ticket " + ($("td.ref", fresh) || fresh).textContent.trim() + ": " + ($("td.subject", fresh) || fresh).textContent.trim());
            if (selected >= 0) selected += 1;
            var empty = $(".empty");
            if (empty) empty.remove();
          }
        });
      }).catch(function () {});
    }, 150);
  }

  var ticketId = ticket ? ticket.getAttribute("data-ticket-id") : null;

  // On a chat, the visitor sees "Support is typing…" while a reply is written.
  if (ticket && ticket.getAttribute("data-channel") === "chat") {
    var typedAt = 0;
    var composer = $("#body");
    var csrfField = $("input[name=csrf]");
    if (composer && csrfField) {
      composer.addEventListener("input", function () {
        var reply = $("#kind-reply");
        if ((reply && !reply.checked) || Date.now() - typedAt < 2000) return;
        typedAt = Date.now();
        fetch("/api/v1/tickets/" + ticketId + "/typing", {
          method: "POST",
          credentials: "same-origin",
          headers: { "x-csrf-token": csrfField.value }
        }).catch(function () {});
      });
    }
  }
  // Collision detection: the page reports itself open (and typing) and
  // shows who else is on the ticket.
  var presenceCsrf = $("input[name=csrf]");
  var presenceLine = $("#presence");
  function names(list) {
    return list.length <= 2 ? list.join(" and ") : list.slice(0, -1).join(", ") + " and " + list[list.length - 1];
  }
  function reportPresence(typing) {
    if (!presenceCsrf || !presenceLine) return;
    fetch("/api/v1/tickets/" + ticketId + "/presence", {
      method: "POST",
      credentials: "same-origin",
      headers: { "x-csrf-token": presenceCsrf.value, "content-type": "application/json" },
      body: JSON.stringify({ typing: typing })
    }).then(function (r) { return r.ok ? r.json() : null; }).then(function (others) {
      if (!others) return;
      var parts = [];
      var watching = others.viewing.filter(function (n) { return others.typing.indexOf(n) < 0; });
      if (others.typing.length) parts.push(names(others.typing) + (others.typing.length > 1 ? " are" : " is") + " typing a reply or note");
      if (watching.length) parts.push(names(watching) + (watching.length > 1 ? " are" : " is") + " also viewing this ticket");
      if (others.visitor_typing) parts.push("The visitor is typing…");
      var text = parts.join(" · ");
      if (presenceLine.textContent !== text) presenceLine.textContent = text;
      presenceLine.hidden = !text;
    }).catch(function () {});
  }
  if (ticket) {
    reportPresence(false);
    setInterval(function () { if (!document.hidden) reportPresence(false); }, 5000);
    var reportedTypingAt = 0;
    var presenceComposer = $("#body");
    if (presenceComposer) {
      presenceComposer.addEventListener("input", function () {
        if (Date.now() - reportedTypingAt < 2000) return;
        reportedTypingAt = Date.now();
        reportPresence(true);
      });
    }
  }

  var refreshTimeline = later(function () {
    var after = ticket.getAttribute("data-last-event") || "0";
    fetch("/tickets/" + ticketId + "/timeline?after=" + encodeURIComponent(after), { credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) return;
        var version = r.headers.get("x-ticket-version");
        return r.text().then(function (html) {
          var list = $("#timeline");
          var added = fragment(html);
          $all("li[data-event-id]", added).forEach(function (li) {
            var id = li.getAttribute("data-event-id");
            if ($("#event-" + id)) return;
            li.classList.add("fresh");
            list.appendChild(li);
            announce("New on the timeline: " + ($(".entry-label", li) || li).textContent.trim());
            if (Number(id) > Number(ticket.getAttribute("data-last-event"))) ticket.setAttribute("data-last-event", id);
          });
          var shown = $(".ticket-version");
          if (version && shown && shown.value !== version && !$("#changed-notice")) {
            var notice = document.createElement("p");
            notice.id = "changed-notice";
            notice.className = "notice";
            notice.setAttribute("role", "status");
            notice.textContent = "This ticket has changed since the page loaded. Reload to update the controls.";
            var controls = $("#controls");
            if (controls) controls.parentElement.insertBefore(notice, controls);
          }
        });
      })
      .catch(function () {});
  }, 150);

  var source = new EventSource(ticketId ? "/api/v1/events?ticket=" + ticketId : "/api/v1/events");
  function onEvent(e) {
    var data;
    try { data = JSON.parse(e.data); } catch (err) { return; }
    if (!data || !data.ticket_id) return;
    if (inbox) { refreshRow(data.ticket_id); refreshCounts(); }
    if (ticketId && String(data.ticket_id) === String(ticketId)) refreshTimeline();
  }
  EVENT_TYPES.forEach(function (type) { source.addEventListener(type, onEvent); });
  document.documentElement.setAttribute("data-live", "connecting");
  source.addEventListener("open", function () { document.documentElement.setAttribute("data-live", "open"); });
})();
