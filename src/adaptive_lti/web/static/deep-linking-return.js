// LTI Deep Linking 2.0 §4.5: the response goes back to the platform as a form POST made by the
// browser. A separate file rather than an inline script, so a strict Content-Security-Policy
// allows it.
document.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
  form.submit();
});
