// Learner pages: move the focus to what changed (feedback, an error, the new activity) so that
// screen-reader and keyboard users hear it, and tell the platform's iframe how tall the page is
// (LTI "lti.frameResize" message, as Moodle and Canvas listen for it).
(function () {
  "use strict";
  var target = document.querySelector("[data-focus]");
  if (target) { target.focus({ preventScroll: false }); }

  function resize() {
    if (window.parent === window) { return; }
    var height = Math.ceil(document.documentElement.scrollHeight);
    window.parent.postMessage({ subject: "lti.frameResize", height: height }, "*");
  }
  window.addEventListener("load", resize);
  if (window.ResizeObserver) {
    new ResizeObserver(resize).observe(document.body);
  } else {
    window.addEventListener("resize", resize);
  }
})();
