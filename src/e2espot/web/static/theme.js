// Apply a saved theme before the first paint (a file, not an inline script: the CSP allows only 'self').
(function () {
  try { var t = localStorage.getItem("e2espot-theme"); if (t) document.documentElement.dataset.theme = t; } catch (e) {}
})();
