/* Tierdesk live-chat widget. Embed with:
 *   <script src="https://DESK/widget.js" data-key="wk_..." async></script>
 * Optional signed identity: set window.TierdeskIdentity = {email, name, ts, sig}
 * before the tag. Everything lives in a Shadow DOM so the host page's CSS
 * cannot reach it. No dependencies.
 * When no agent is available, the panel takes a message with the visitor's
 * email address (required unless signed in) and confirms where the reply
 * will go; the desk answers by email. */
(function () {
  "use strict";
  var script = document.currentScript ||
    document.querySelector('script[data-key][src*="widget.js"]');
  if (!script || window.__tierdeskWidget) return;
  window.__tierdeskWidget = true;
  var key = script.getAttribute("data-key") || "";
  var origin = new URL(script.src, location.href).origin;
  var wsUrl = origin.replace(/^http/, "ws") + "/chat/ws?key=" + encodeURIComponent(key);
  var store = "tierdesk-chat:" + key;
  var saved = {};
  try { saved = JSON.parse(localStorage.getItem(store) || "{}") || {}; } catch (e) { saved = {}; }
  function save() { try { localStorage.setItem(store, JSON.stringify(saved)); } catch (e) { /* private mode */ } }

  // A custom element with inline !important styles: page rules cannot hide
  // or restyle the host, and none reach inside the shadow root.
  var host = document.createElement("tierdesk-chat");
  host.setAttribute("style", "all:initial !important;display:block !important;position:fixed !important;" +
    "right:20px !important;bottom:20px !important;z-index:2147483647 !important;visibility:visible !important;" +
    "opacity:1 !important;transform:none !important;filter:none !important");
  var root = host.attachShadow({ mode: "open" });
  var css =
    ".w{font:14px/1.4 system-ui,-apple-system,\"Segoe UI\",Roboto,Arial,sans-serif;color:#1b1f24}" +
    "[hidden]{display:none !important}" +
    "*{box-sizing:border-box;font:inherit;color:inherit;margin:0}" +
    "button{cursor:pointer;border:0;border-radius:8px;background:#1f5fbf;color:#fff;padding:8px 12px}" +
    "button:focus-visible,input:focus-visible,textarea:focus-visible{outline:3px solid #f0b400;outline-offset:1px}" +
    ".launch{border-radius:28px;padding:12px 18px;box-shadow:0 2px 10px rgba(0,0,0,.3)}" +
    ".panel{position:absolute;right:0;bottom:56px;width:320px;max-width:calc(100vw - 40px);height:440px;max-height:calc(100vh - 100px);background:#fff;border:1px solid #c8ced6;border-radius:12px;box-shadow:0 4px 24px rgba(0,0,0,.25);display:flex;flex-direction:column;overflow:hidden}" +
    "header{background:#1f5fbf;color:#fff;padding:10px 12px;display:flex;justify-content:space-between;align-items:center}" +
    "header button{background:transparent;padding:2px 8px}" +
    ".log{flex:1;overflow-y:auto;padding:10px;display:flex;flex-direction:column;gap:6px;background:#f6f7f9}" +
    ".msg{max-width:80%;padding:6px 10px;border-radius:10px;white-space:pre-wrap;word-wrap:break-word}" +
    ".visitor{align-self:flex-end;background:#1f5fbf;color:#fff}" +
    ".agent{align-self:flex-start;background:#fff;border:1px solid #d5dae1}" +
    ".pending{opacity:.6}" +
    ".note{align-self:center;font-size:12px;color:#4a5360;text-align:center}" +
    ".typing{font-size:12px;color:#4a5360;padding:0 10px;min-height:18px}" +
    ".bot{align-self:flex-start;background:#fff;border:1px solid #d5dae1;max-width:90%}" +
    ".bot blockquote{margin:4px 0;padding-left:8px;border-left:3px solid #1f5fbf;white-space:pre-wrap}" +
    ".bot a{color:#1f5fbf}" +
    ".choices{display:flex;gap:6px;margin-top:6px;flex-wrap:wrap}" +
    ".choices .alt{background:#e8edf4;color:#1b1f24}" +
    "form{display:flex;gap:6px;padding:8px;border-top:1px solid #e1e5ea}" +
    "form.start{flex-direction:column;border:0}" +
    "input,textarea{flex:1;border:1px solid #b5bcc6;border-radius:8px;padding:6px 8px;background:#fff;min-width:0}" +
    "textarea{resize:none;height:38px}" +
    ".attach{background:#e8edf4;color:#1b1f24;padding:8px}" +
    "label{font-size:12px;display:flex;flex-direction:column;gap:2px}" +
    ".offline{flex-direction:column;border:0}.offline textarea{height:80px}.offline *{flex:none}.offline b{font-weight:700}" +
    ".error{color:#a4001d;font-size:12px}[aria-invalid=true]{border:2px solid #a4001d}" +
    ".confirm{background:#e6f4ea;border-radius:8px;padding:6px 10px}";
  root.innerHTML =
    "<style>" + css + "</style>" +
    '<div class="w"><div class="panel" role="dialog" aria-label="Chat with support" hidden>' +
    '<header><span>Chat with support</span><button type="button" class="close" aria-label="Close chat">\u2715</button></header>' +
    '<div class="log" role="log" aria-live="polite"></div>' +
    '<div class="typing" aria-live="polite"></div>' +
    '<form class="start"><p>Questions? We\u2019re here. Your details are optional.</p>' +
    '<label>Name<input name="name" autocomplete="name"></label>' +
    '<label>Email<input name="email" type="email" autocomplete="email"></label>' +
    '<button type="submit">Start chat</button></form>' +
    '<form class="send" hidden><button type="button" class="attach" aria-label="Send a file">\ud83d\udcce</button>' +
    '<input type="file" class="file" hidden>' +
    '<textarea name="text" aria-label="Message" placeholder="Type a message\u2026"></textarea>' +
    '<button type="submit">Send</button></form>' +
    "</div>" +
    '<button type="button" class="launch" aria-expanded="false">Chat with us</button></div>';
  var $ = function (s) { return root.querySelector(s); };
  var panel = $(".panel"), log = $(".log"), launch = $(".launch"), typingEl = $(".typing");
  var startForm = $("form.start"), sendForm = $("form.send"), textarea = sendForm.elements.text;
  // The offline form is built when it is needed (no agent available).
  var offlineForm = null, verified = false, knownEmail = "";

  // The newest message id on this page: a reconnect asks only for newer
  // ones; a fresh page (lastSeen 0) gets the whole conversation.
  var lastSeen = 0;
  var ws = null, ready = false, backoff = 1000, shown = {}, pending = [], typingTimer = 0, lastTyping = 0;

  function line(cls, text, id) {
    if (id && shown[id]) return null;
    var el = document.createElement("div");
    el.className = cls;
    el.textContent = text;
    if (id) { shown[id] = el; }
    log.appendChild(el);
    log.scrollTop = log.scrollHeight;
    return el;
  }
  function seen(id) {
    if (id > lastSeen) lastSeen = id;
  }
  function show(m) {
    line("msg " + (m.from === "agent" ? "agent" : "visitor"), m.text, m.id);
    seen(m.id);
  }
  function uid() {
    return window.crypto && crypto.randomUUID ? crypto.randomUUID() :
      Date.now().toString(36) + Math.random().toString(36).slice(2);
  }
  // Until a person has the chat (no ticket yet), questions go to the
  // answer bot first; it hands over by itself when it is not sure.
  var withPerson = false;
  function transmit(p) {
    if (!ws || !ready) return;
    if (p.offline) ws.send(JSON.stringify({ type: "message", client_id: p.client_id, text: p.text, email: p.email }));
    else if (p.handover) ws.send(JSON.stringify({ type: "handover", client_id: p.client_id }));
    else ws.send(JSON.stringify({ type: withPerson ? "message" : "ask", client_id: p.client_id, text: p.text }));
  }
  function botAnswer(m) {
    var a = m.answer || {};
    pending = pending.filter(function (p) {
      if (p.client_id !== m.client_id) return true;
      if (a.handover) return true; // the hand-over's ack settles it
      p.el.classList.remove("pending");
      return false;
    });
    var el = document.createElement("div");
    el.className = "msg bot";
    if (a.confident && a.passages && a.passages.length) {
      var intro = document.createElement("p");
      intro.textContent = "This may answer it:";
      el.appendChild(intro);
      if (a.generated) {
        // Worded by the model from the quoted passages, which follow as its sources.
        var worded = document.createElement("p");
        worded.className = "generated";
        worded.textContent = a.generated;
        el.appendChild(worded);
      }
      a.passages.slice(0, 2).forEach(function (p) {
        var q = document.createElement("blockquote");
        q.textContent = p.text;
        var link = document.createElement("a");
        // Relative to the desk, not to the page the widget is embedded in.
        link.href = new URL(p.url, origin).href;
        link.target = "_blank";
        link.rel = "noopener";
        link.textContent = p.title + (p.heading ? " \u2014 " + p.heading : "");
        el.appendChild(q);
        el.appendChild(link);
      });
      var choices = document.createElement("div");
      choices.className = "choices";
      var yes = document.createElement("button");
      yes.type = "button";
      yes.textContent = "That solved it";
      var no = document.createElement("button");
      no.type = "button";
      no.className = "alt";
      no.textContent = "Talk to a person";
      yes.addEventListener("click", function () {
        choices.remove();
        if (ws && ready) ws.send(JSON.stringify({ type: "solved", answer_id: a.answer_id }));
      });
      no.addEventListener("click", function () {
        choices.remove();
        var p = { client_id: uid(), text: "I would like to talk to a person.", handover: true };
        p.el = line("msg visitor pending", p.text);
        pending.push(p);
        transmit(p);
      });
      choices.appendChild(yes);
      choices.appendChild(no);
      el.appendChild(choices);
    } else {
      el.textContent = "Let me get someone from our support team for you.";
    }
    log.appendChild(el);
    log.scrollTop = log.scrollHeight;
  }

  // No agent available: the message goes with an email address (a signed-in
  // visitor's own) and the desk answers by email.
  function offlineMode() {
    var f = offlineForm;
    if (!f) {
      f = offlineForm = document.createElement("form");
      f.className = "offline";
      f.noValidate = true;
      f.setAttribute("aria-labelledby", "tdk-off");
      f.innerHTML = '<p id="tdk-off"><b>No one is available right now.</b> Leave a message and we\u2019ll reply by email.</p>' +
        '<label>Your message<textarea name="text"></textarea></label><label class="mail">Your email address' +
        '<input name="email" type="email" autocomplete="email" required aria-describedby="tdk-err"></label>' +
        '<p class="error" id="tdk-err" role="alert"></p><button type="submit">Send message</button>';
      panel.insertBefore(f, sendForm);
      f.addEventListener("submit", function (e) {
        e.preventDefault();
        var text = f.elements.text.value.trim(), mail = f.elements.email.value.trim();
        if (!text) return offlineError("Please write your message.");
        if (!verified && !/^[^@\s]+@[^@\s]+\.[^@\s.]+$/.test(mail)) {
          return offlineError(mail ? "Please check your email address: we need it to reply." :
            "Please enter your email address so we can reply.");
        }
        offlineError("");
        if (pending.some(function (p) { return p.offline; })) return;
        f.querySelector("button").disabled = true;
        var p = { client_id: uid(), text: text, email: verified ? "" : mail, offline: true };
        pending.push(p);
        transmit(p);
      });
    }
    f.querySelector(".mail").hidden = verified;
    f.elements.email.value = f.elements.email.value || knownEmail || saved.email || "";
    sendForm.hidden = true;
    f.hidden = false;
  }
  function offlineError(message) {
    var mail = offlineForm.elements.email;
    offlineForm.querySelector(".error").textContent = message;
    offlineForm.querySelector("button").disabled = false;
    if (message) mail.setAttribute("aria-invalid", "true"); else mail.removeAttribute("aria-invalid");
    if (message && !verified) mail.focus();
  }
  // Taken: the visitor sees the message, and where the reply will go.
  function offlineTaken(p, m) {
    offlineError("");
    offlineForm.hidden = true;
    offlineForm.elements.text.value = "";
    line("msg visitor", p.text, m.id);
    saved.email = knownEmail = m.follow_up_email || knownEmail;
    save();
    line("note confirm", "Thanks! We\u2019ll reply by email to " + knownEmail + ".").setAttribute("role", "status");
    sendForm.hidden = false;
  }

  function connect() {
    ready = false;
    try { ws = new WebSocket(wsUrl); } catch (e) { retry(); return; }
    ws.onopen = function () {
      var hello = { type: "hello" };
      if (saved.token) {
        hello.resume_token = saved.token;
        hello.last_seen = lastSeen;
      } else if (window.TierdeskIdentity) {
        hello.identity = window.TierdeskIdentity;
      } else {
        if (saved.name) hello.name = saved.name;
        if (saved.email) hello.email = saved.email;
      }
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = function (e) {
      var m;
      try { m = JSON.parse(e.data); } catch (x) { return; }
      if (m.type === "welcome") {
        ready = true;
        backoff = 1000;
        saved.token = m.conversation_token;
        save();
        if (m.ticket_id) withPerson = true;
        verified = !!m.verified;
        if (m.email) knownEmail = m.email;
        (m.messages || []).forEach(show);
        if (!m.agents_available && !m.follow_up_email) {
          offlineMode();
        } else if (!m.agents_available && knownEmail) {
          line("note", "No one is available right now; we\u2019ll reply by email to " + knownEmail + ".");
        }
        pending.forEach(transmit);
      } else if (m.type === "answer") {
        botAnswer(m);
      } else if (m.type === "solved") {
        line("note", "Glad that helped! Ask another question any time.");
      } else if (m.type === "ack") {
        withPerson = true;
        pending = pending.filter(function (p) {
          if (p.client_id !== m.client_id) return true;
          if (p.offline) { offlineTaken(p, m); return false; }
          p.el.classList.remove("pending");
          if (shown[m.id] && shown[m.id] !== p.el) p.el.remove();
          else shown[m.id] = p.el;
          return false;
        });
        seen(m.id);
      } else if (m.type === "message") {
        typingEl.textContent = "";
        show(m);
      } else if (m.type === "typing") {
        typingEl.textContent = "Support is typing\u2026";
        clearTimeout(typingTimer);
        typingTimer = setTimeout(function () { typingEl.textContent = ""; }, 4000);
      } else if (m.type === "error") {
        // An error about the offline message (named, or the only one waiting).
        var refused = pending.filter(function (p) {
          return p.offline && (m.client_id ? p.client_id === m.client_id : m.code !== "unknown_conversation");
        })[0];
        if (refused) {
          // Nothing was recorded: the message stays in the form to correct.
          pending = pending.filter(function (p) { return p !== refused; });
          offlineError(m.message);
        } else if (m.code === "unknown_conversation") {
          saved = { name: saved.name, email: saved.email };
          save();
        } else {
          line("note", m.message || "Something went wrong.");
        }
      }
    };
    ws.onclose = function () { ready = false; ws = null; retry(); };
  }
  function retry() {
    setTimeout(connect, backoff + Math.random() * 500);
    backoff = Math.min(backoff * 2, 30000);
  }

  function begin() {
    startForm.hidden = true;
    sendForm.hidden = false;
    if (!ws) connect();
    textarea.focus();
  }
  startForm.addEventListener("submit", function (e) {
    e.preventDefault();
    saved.name = startForm.elements.name.value.trim();
    saved.email = startForm.elements.email.value.trim();
    save();
    begin();
  });
  sendForm.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = textarea.value.trim();
    if (!text) return;
    textarea.value = "";
    var p = { client_id: uid(), text: text, el: line("msg visitor pending", text) };
    pending.push(p);
    transmit(p);
  });
  var fileInput = $("input.file");
  $(".attach").addEventListener("click", function () { fileInput.click(); });
  fileInput.addEventListener("change", function () {
    var file = fileInput.files && fileInput.files[0];
    fileInput.value = "";
    if (!file || !saved.token) return;
    var el = line("msg visitor pending", "\ud83d\udcce " + file.name);
    fetch(origin + "/chat/upload", {
      method: "POST",
      headers: {
        "content-type": file.type || "application/octet-stream",
        "x-conversation-token": saved.token,
        "x-filename": encodeURIComponent(file.name)
      },
      body: file
    }).then(function (r) {
      if (!r.ok) throw new Error(r.status === 413 ? "That file is too large." : "The file could not be sent.");
      return r.json();
    }).then(function (up) {
      el.classList.remove("pending");
      shown[up.message_id] = el;
      seen(up.message_id);
    }).catch(function (err) {
      el.remove();
      line("note", err.message);
    });
  });
  textarea.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); sendForm.requestSubmit(); }
  });
  textarea.addEventListener("input", function () {
    var now = Date.now();
    if (ws && ready && now - lastTyping > 2000) {
      lastTyping = now;
      ws.send('{"type":"typing"}');
    }
  });
  function toggle(open) {
    panel.hidden = !open;
    launch.setAttribute("aria-expanded", String(open));
    if (open && (saved.token || window.TierdeskIdentity)) begin();
  }
  launch.addEventListener("click", function () { toggle(panel.hidden); });
  $(".close").addEventListener("click", function () { toggle(false); launch.focus(); });
  function mount() { document.body.appendChild(host); }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
