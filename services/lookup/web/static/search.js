// Search as you type: the page asks itself for its results fragment (the same template the
// server renders without JavaScript), so there is one way to show results. Arrow keys move
// between the results; Escape goes back to the search box.
(function () {
  "use strict";
  var form = document.getElementById("search-form");
  var input = document.getElementById("q");
  var results = document.getElementById("results");
  var status = document.getElementById("search-status");
  if (!form || !input || !results) return;

  var timer = 0;
  var pending = null;
  var shown = new URLSearchParams(new FormData(form)).toString();

  function params() {
    var p = new URLSearchParams(new FormData(form));
    ["system", "billable"].forEach(function (k) { if (!p.get(k)) p.delete(k); });
    return p;
  }

  function refresh() {
    var p = params();
    var query = p.toString();
    if (query === shown) return;
    shown = query;
    if (pending) pending.abort();
    pending = new AbortController();
    results.setAttribute("aria-busy", "true");
    fetch("/search?" + query + "&fragment=1", {
      credentials: "same-origin", signal: pending.signal, headers: { Accept: "text/html" },
    }).then(function (response) {
      if (!response.ok) throw new Error("search answered " + response.status);
      return response.text();
    }).then(function (html) {
      results.innerHTML = html;
      results.removeAttribute("aria-busy");
      var count = results.querySelector(".count");
      if (status) status.textContent = count ? count.textContent : "";
      history.replaceState(null, "", p.get("q") ? "/search?" + query : "/");
    }).catch(function (error) {
      if (error.name !== "AbortError") {
        results.removeAttribute("aria-busy");
        shown = "";  // let the next keystroke try again
      }
    });
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 150);
  }

  function links() {
    return Array.prototype.slice.call(results.querySelectorAll("#result-list a"));
  }

  input.addEventListener("input", later);
  form.addEventListener("change", function (event) {
    if (event.target !== input) refresh();
  });
  function compact(text) { return text.replace(/[\s.\-]/g, "").toUpperCase(); }

  form.addEventListener("submit", function (event) {
    // A code typed whole jumps straight to its page ("i219" + Enter opens I21.9).
    var first = links()[0];
    var code = first && first.querySelector(".code");
    if (code && compact(code.textContent) === compact(input.value)) {
      event.preventDefault();
      window.location.href = first.href;
    }
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "ArrowDown") {
      var first = links()[0];
      if (first) { event.preventDefault(); first.focus(); }
    } else if (event.key === "Escape") {
      input.value = "";
      later();
    }
  });
  results.addEventListener("keydown", function (event) {
    var all = links();
    var at = all.indexOf(document.activeElement);
    if (at < 0) return;
    if (event.key === "ArrowDown" && at + 1 < all.length) {
      event.preventDefault(); all[at + 1].focus();
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      if (at > 0) all[at - 1].focus(); else input.focus();
    } else if (event.key === "Escape") {
      event.preventDefault(); input.focus();
    }
  });
})();
