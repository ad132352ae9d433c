// microbatch UI: the page is rendered by the server; this script only refreshes it while
// queries run (every 2 s, when the figures changed) and shows a mark's tooltip at once.
(function () {
  "use strict";
  var main = document.getElementById("content");
  var updated = document.getElementById("updated");
  var last = null;

  function openTables() {
    var open = [];
    main.querySelectorAll("figure.chart").forEach(function (f) {
      var d = f.querySelector("details");
      if (d && d.open) open.push(f.id);
    });
    return open;
  }

  function refresh() {
    fetch("/fragment", { cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (html) {
        if (html !== last) {
          var open = openTables();
          if (last !== null) main.innerHTML = html;
          open.forEach(function (id) {
            var f = document.getElementById(id);
            var d = f && f.querySelector("details");
            if (d) d.open = true;
          });
          last = html;
        }
        updated.textContent = "· live, checked " + new Date().toISOString().slice(11, 19) + " UTC";
      })
      .catch(function (e) {
        updated.textContent = "· the server does not answer (" + e.message + "); retrying";
      });
  }

  // A tooltip that appears at once (the SVG <title> stays for the browser's own).
  var tip = document.createElement("div");
  tip.id = "tip";
  document.body.appendChild(tip);
  main.addEventListener("mousemove", function (ev) {
    var t = ev.target.closest && ev.target.closest(".pt, .late, .window");
    var title = t && t.querySelector("title");
    if (!title) { tip.style.display = "none"; return; }
    tip.textContent = title.textContent;
    tip.style.left = ev.clientX + 14 + "px";
    tip.style.top = ev.clientY + 14 + "px";
    tip.style.display = "block";
  });
  main.addEventListener("mouseleave", function () { tip.style.display = "none"; });

  refresh();
  setInterval(refresh, 2000);
})();
