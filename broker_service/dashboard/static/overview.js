// The overview's charts: queue sizes from the JSON the page embeds, the daily history fetched
// as JSON; drawn again after every live swap (htmx replaces the canvases). No animation, so a
// refresh does not flicker.
(function () {
  "use strict";
  var COLORS = {
    pending: "#2f6fed", active: "#1a7f4b", scheduled: "#7c5cd6", retry: "#d97706",
    archived: "#c0362c", completed: "#94a3b8", aggregating: "#0e9aa7"
  };

  function common(stacked) {
    return {
      animation: false, responsive: true, maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      plugins: { legend: { position: "bottom", labels: { boxWidth: 12, font: { size: 11 } } } },
      scales: {
        x: { stacked: stacked, grid: { display: false }, ticks: { font: { size: 11 } } },
        y: { stacked: stacked, beginAtZero: true, ticks: { precision: 0, font: { size: 11 } } }
      }
    };
  }

  function sizes(canvas, data) {
    var datasets = data.states.map(function (entry) {
      return { label: entry[0], data: entry[1], backgroundColor: COLORS[entry[0]] };
    });
    var options = common(true);
    options.indexAxis = "y";
    return new Chart(canvas, { type: "bar", data: { labels: data.labels, datasets: datasets },
                               options: options });
  }

  function history(canvas, data) {
    var datasets = [
      { label: "processed", data: data.processed, borderColor: "#2f6fed",
        backgroundColor: "rgba(47,111,237,0.12)", fill: true, tension: 0.25, pointRadius: 2 },
      { label: "failed", data: data.failed, borderColor: "#c0362c",
        backgroundColor: "rgba(192,54,44,0.10)", fill: true, tension: 0.25, pointRadius: 2 }
    ];
    var labels = data.labels.map(function (day) { return day.slice(5); });
    return new Chart(canvas, { type: "line", data: { labels: labels, datasets: datasets },
                               options: common(false) });
  }

  function replace(id, make, data) {
    var canvas = document.getElementById(id);
    if (!canvas) return;
    var old = Chart.getChart(canvas);
    if (old) old.destroy();
    make(canvas, data);
  }

  // The daily history is one read per queue on the server: fetched on load, on a change of
  // its length, and on live refreshes at most every REFETCH_MS (a day's bar moves slowly).
  var REFETCH_MS = 10000;
  var fetched = { url: null, at: 0, data: null };

  function drawHistory() {
    var canvas = document.getElementById("history-chart");
    if (!canvas) return;
    var url = canvas.dataset.src;
    if (fetched.url === url && Date.now() - fetched.at < REFETCH_MS) {
      replace("history-chart", history, fetched.data);
      return;
    }
    fetch(url, { credentials: "same-origin" })
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (data) {
        if (!data) return;
        fetched = { url: url, at: Date.now(), data: data };
        replace("history-chart", history, data);
      })
      .catch(function () {
        // The broker did not answer (restarting, or the page is closing): keep the chart
        // drawn; the next live refresh fetches again.
      });
  }

  function draw() {
    var source = document.getElementById("overview-sizes");
    if (!source || !window.Chart) return;
    replace("sizes-chart", sizes, JSON.parse(source.textContent));
    drawHistory();
  }

  document.addEventListener("DOMContentLoaded", draw);
  document.addEventListener("htmx:afterSettle", draw);
})();
