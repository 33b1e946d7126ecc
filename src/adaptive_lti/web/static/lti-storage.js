// LTI client-side postMessage storage (1EdTech "LTI Client Side postMessages", lti.put_data /
// lti.get_data): binds the OIDC state to this browser when the platform's frame, not a cookie,
// must hold it. A separate file so a strict Content-Security-Policy allows it.
(function () {
  "use strict";
  var config = document.getElementById("lti-storage");
  if (!config) { return; }
  var data = config.dataset;
  var target = data.target === "_parent" ? window.parent : (window.parent.frames[data.target] || window.parent);
  var pending = {};
  var counter = 0;

  function send(message, callback) {
    counter += 1;
    message.message_id = "adaptive-lti-" + counter + "-" + Date.now();
    pending[message.message_id] = callback;
    target.postMessage(message, data.origin);
  }

  window.addEventListener("message", function (event) {
    if (event.origin !== data.origin || !event.data || !pending[event.data.message_id]) { return; }
    var callback = pending[event.data.message_id];
    delete pending[event.data.message_id];
    callback(event.data);
  });

  if (data.mode === "put") {
    var go = function () { window.location.href = data.next; };
    var fallback = window.setTimeout(go, 2000);
    send({ subject: "lti.put_data", key: "state_" + data.state, value: data.state }, function () {
      send({ subject: "lti.put_data", key: "nonce_" + data.nonce, value: data.nonce }, function () {
        window.clearTimeout(fallback);
        go();
      });
    });
  } else if (data.mode === "get") {
    send({ subject: "lti.get_data", key: "state_" + data.state }, function (reply) {
      var form = document.getElementById("lti-storage-form");
      form.elements.lti_storage_state.value = reply.value || "";
      form.submit();
    });
  }
})();
