// duplexloom QA report: audio status, playback cursor over the timeline plots, trace seeking.
"use strict";
(function () {
  var errors = [];
  function showError(msg) {
    errors.push(msg);
    var box = document.getElementById("qa-errors");
    if (box) { box.textContent = "Report problems: " + errors.join(" | "); }
  }
  window.addEventListener("error", function (e) { showError(String(e.message || e)); });

  function setState(audio, state, text) {
    audio.dataset.state = state;
    var label = audio.parentNode.querySelector(".state");
    if (label) { label.textContent = text; label.className = "state " + state; }
  }
  function watchAudio(audio) {
    function ok() {
      setState(audio, "ok", audio.duration.toFixed(2) + " s, " + (audio.dataset.channels || "?") + " ch");
    }
    if (audio.readyState >= 1) { ok(); }
    audio.addEventListener("loadedmetadata", ok);
    audio.addEventListener("error", function () {
      setState(audio, "error", "cannot load " + audio.getAttribute("src"));
      showError("audio " + audio.getAttribute("src") + " failed to load");
    });
  }

  function follow(audio) {
    var plots = Array.prototype.slice.call(document.querySelectorAll(".plot"));
    var rows = document.querySelectorAll("table.trace tr[data-t]");
    var chunkS = parseFloat(document.body.dataset.chunkS || "0.16");
    var current = null;
    audio.addEventListener("timeupdate", function () {
      var t = audio.currentTime;
      plots.forEach(function (p) {
        var t0 = parseFloat(p.dataset.t0), t1 = parseFloat(p.dataset.t1);
        var cur = p.querySelector(".cursor");
        if (t >= t0 && t < t1) {
          var x0 = parseFloat(p.dataset.x0), x1 = parseFloat(p.dataset.x1);
          cur.style.left = (100 * (x0 + (x1 - x0) * (t - t0) / (t1 - t0))) + "%";
          cur.style.display = "block";
        } else { cur.style.display = "none"; }
      });
      var idx = Math.floor(t / chunkS);
      if (rows[idx] && rows[idx] !== current) {
        if (current) { current.classList.remove("now"); }
        current = rows[idx];
        current.classList.add("now");
      }
    });
    Array.prototype.forEach.call(rows, function (row) {
      row.addEventListener("click", function () {
        audio.currentTime = parseFloat(row.dataset.t);
        audio.play().catch(function () { /* autoplay policy: the reviewer presses play */ });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("audio"), watchAudio);
    var mix = document.querySelector("audio.mix");
    if (mix) { follow(mix); }
  });
})();
