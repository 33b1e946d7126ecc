// LTI Dynamic Registration 1.0 §3.7: when registration is complete the tool tells the platform
// to close its registration window or frame by posting {subject: "org.imsglobal.lti.close"} to
// its opener (a popup) or parent (an iframe, as Moodle opens it). Sent when the administrator
// presses the button, so they can read the result (and the approval command) first.
(function () {
  var button = document.querySelector("[data-lti-close]");
  if (!button) {
    return;
  }
  button.addEventListener("click", function () {
    var target = window.opener || (window.parent !== window ? window.parent : null);
    if (target) {
      target.postMessage({ subject: "org.imsglobal.lti.close" }, "*");
    } else {
      window.close();
    }
  });
})();
