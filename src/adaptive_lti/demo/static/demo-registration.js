// The demo platform's registration page (LTI Dynamic Registration 1.0 §3.7): when the tool posts
// {subject: "org.imsglobal.lti.close"} from the frame (or the window it was opened in), close it
// and show Manage tools with the new registration, as Moodle does.
(function () {
  var frame = document.getElementById("registration-frame");
  if (!frame) return;
  var toolsUrl = frame.getAttribute("data-tools-url");
  var opened = null;
  var link = document.querySelector("[data-registration-start]");
  if (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      opened = window.open(link.href, "_blank");
    });
  }
  window.addEventListener("message", function (event) {
    var data = event.data;
    if (!data || data.subject !== "org.imsglobal.lti.close") return;
    if (event.source !== frame.contentWindow && (opened === null || event.source !== opened)) return;
    if (opened !== null) opened.close();
    window.location.assign(toolsUrl);
  });
})();
