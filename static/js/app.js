/* Small progressive enhancements for every page. The pages work without it. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function markCurrentTab() {
    var here = window.location.pathname;
    document.querySelectorAll(".tabs a").forEach(function (link) {
      var path = new URL(link.href, window.location.href).pathname;
      if (here === path || (path !== "/" && here.indexOf(path) === 0)) {
        link.setAttribute("aria-current", "page");
      } else {
        link.removeAttribute("aria-current");
      }
    });
  }

  document.addEventListener("DOMContentLoaded", markCurrentTab);
  // After htmx swaps the page's main content, keep the tabs and focus right.
  document.addEventListener("htmx:afterSettle", function (event) {
    markCurrentTab();
    var main = document.getElementById("main");
    if (main && event.detail && event.detail.target === main) {
      var heading = main.querySelector("h1");
      (heading || main).setAttribute("tabindex", "-1");
      (heading || main).focus({ preventScroll: true });
    }
  });
  window.addEventListener("popstate", markCurrentTab);
})();
