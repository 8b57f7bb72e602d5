// The run page, live: new events from the run's event log are appended, and each state
// snapshot re-colours the stage timeline. Without this script the page is a snapshot.
(function () {
  "use strict";
  function start() {
    var list = document.getElementById("events");
    if (!list || !list.dataset.source || !window.EventSource) return;
    var source = new EventSource(list.dataset.source);
    function text(tag, value, cls) {
      var el = document.createElement(tag);
      el.textContent = value;
      if (cls) el.className = cls;
      return el;
    }
    source.onmessage = function (msg) {
      var e = JSON.parse(msg.data);
      var li = document.createElement("li");
      var rest = {};
      Object.keys(e).forEach(function (k) { if (k !== "t" && k !== "kind") rest[k] = e[k]; });
      li.appendChild(text("time", e.t || ""));
      li.appendChild(document.createTextNode(" "));
      li.appendChild(text("code", e.kind || ""));
      li.appendChild(document.createTextNode(" " + JSON.stringify(rest).slice(0, 300)));
      li.className = "new";
      list.appendChild(li);
      list.dataset.count = String(list.children.length);
    };
    source.addEventListener("state", function (msg) {
      var s = JSON.parse(msg.data);
      var badge = document.getElementById("run-status");
      if (badge) { badge.textContent = s.status; badge.className = "status " + s.status; }
      var cost = document.getElementById("run-cost");
      if (cost && s.cost) cost.textContent = s.cost;
      Object.keys(s.stages).forEach(function (name) {
        var st = s.stages[name];
        var li = document.querySelector('.timeline li[data-stage="' + name + '"]');
        if (!li) return;
        li.className = "stage " + st.status;
        var label = li.querySelector(".st");
        if (label) label.textContent = st.status;
        var model = li.querySelector(".model");
        if (model) model.textContent = st.model || "";
        var cost = li.querySelector(".cost");
        if (cost) cost.textContent = st.cost || "";
      });
    });
    source.addEventListener("end", function () {
      source.close();
      document.body.dataset.live = "ended";
    });
    document.body.dataset.live = "on";
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
