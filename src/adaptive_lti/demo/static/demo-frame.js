// The demo course page: fit the embedded tool's frame to what the tool says its page needs
// (the lti.frameResize message Moodle's and Canvas's course pages listen for). Only the frame's
// own window is listened to.
(function () {
  var frame = document.getElementById("contentframe");
  if (!frame) return;
  window.addEventListener("message", function (event) {
    var data = event.data;
    if (event.source !== frame.contentWindow || !data || data.subject !== "lti.frameResize") return;
    var height = Number(data.height);
    if (height > 0 && height < 100000) frame.style.height = Math.ceil(height) + "px";
  });
})();
