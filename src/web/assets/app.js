// deployd status page: live updates only. Every page reads fine without
// this script; with it, the overview and project pages refresh when the
// daemon's state changes, and a running run's log follows the file.
"use strict";
(function () {
  var live = document.body.getAttribute("data-live");
  if (!live || !window.EventSource) return;

  // Replace <main> with a fresh render of this page.
  var refreshing = false, again = false;
  function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch(location.href, { credentials: "same-origin" }).then(function (r) {
      return r.ok ? r.text() : null;
    }).then(function (text) {
      if (text) {
        var doc = new DOMParser().parseFromString(text, "text/html");
        var fresh = doc.getElementById("main");
        if (fresh) document.getElementById("main").replaceWith(fresh);
      }
    }).catch(function () {}).then(function () {
      refreshing = false;
      if (again) { again = false; refresh(); }
    });
  }

  if (live === "status") {
    var base = document.querySelector("a.home").getAttribute("href").replace(/\/$/, "");
    var es = new EventSource(base + "/events");
    es.addEventListener("change", refresh);
    // What changed between the render and the stream's start (or during a
    // reconnect) has no event of its own: catch up once per connection.
    es.onopen = refresh;
    return;
  }

  // A running run: follow its log from where the page stopped.
  var log = document.getElementById("log");
  var state = document.getElementById("live");
  var offset = log.getAttribute("data-offset");
  var line = log.getAttribute("data-line");
  var source = null, ended = false;

  function atBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  }
  function open() {
    source = new EventSource(live + "?offset=" + offset + "&line=" + line);
    source.onmessage = function (e) {
      var stick = atBottom();
      log.insertAdjacentHTML("beforeend", e.data);
      if (e.lastEventId) offset = e.lastEventId;
      var last = log.lastElementChild;
      if (last && last.id) line = String(Number(last.id.slice(1)) + 1);
      if (stick) log.scrollTop = log.scrollHeight;
      if (state) state.textContent = "running: following the log";
    };
    source.addEventListener("end", function () {
      ended = true;
      source.close();
      if (state) state.textContent = "finished";
      // The final status, exit code and timings.
      refresh();
    });
    source.onerror = function () {
      if (state && !ended) state.textContent = "reconnecting…";
    };
  }
  open();
  // A hidden tab's connection may have been dropped: go on from the last
  // line received when it shows again.
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && !ended && source && source.readyState === EventSource.CLOSED) open();
  });
})();
