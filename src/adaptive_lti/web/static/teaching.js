// Inside a VLE's iframe, ask the platform to fit the frame to the page (the LTI frame resize
// message Moodle and Canvas listen for), now and whenever the page's height changes.
(function () {
  if (window.parent === window) return;
  var last = 0;
  function tell() {
    var height = document.documentElement.scrollHeight;
    if (height === last) return;
    last = height;
    window.parent.postMessage({ subject: "lti.frameResize", height: height }, "*");
  }
  window.addEventListener("load", tell);
  if (window.ResizeObserver) new ResizeObserver(tell).observe(document.body);
})();
