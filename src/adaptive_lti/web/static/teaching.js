// Inside a VLE's iframe, ask the platform to fit the frame to the page (the LTI frame resize
// message Moodle and Canvas listen for), now and whenever the page's height changes.
(function () {
  if (window.parent === window) return;
  var last = 0;
  function tell() {
    // The content's own height: scrollHeight never drops below the frame's current height,
    // so a frame sized for a long page would never shrink for a short one.
    var height = Math.ceil(document.documentElement.getBoundingClientRect().height);
    if (height === last) return;
    last = height;
    window.parent.postMessage({ subject: "lti.frameResize", height: height }, "*");
  }
  window.addEventListener("load", tell);
  if (window.ResizeObserver) new ResizeObserver(tell).observe(document.body);
})();
