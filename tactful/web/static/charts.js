// Draw each chart from the figure JSON the server embedded in the page. The tables beside
// the charts carry the same numbers, so the pages read the same without JavaScript; once
// the charts are drawn, those tables fold away (a click opens them again).
(function () {
  "use strict";
  if (!window.Plotly) {
    return;
  }
  var config = {
    displaylogo: false,
    responsive: true,
    displayModeBar: window.matchMedia("(min-width: 641px)").matches ? "hover" : false,
    modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"],
  };
  document.querySelectorAll('script[type="application/json"][data-plot]').forEach(function (el) {
    var target = document.getElementById(el.getAttribute("data-plot"));
    if (!target) {
      return;
    }
    var figure = JSON.parse(el.textContent);
    target.textContent = "";
    target.classList.add("drawn");
    window.Plotly.newPlot(target, figure.data, figure.layout, config);
  });
  document.querySelectorAll("details[data-fold-with-js]").forEach(function (d) {
    d.open = false;
  });
})();
