// The demo platform's forms (login initiation, id_token form_post) send themselves, as a VLE's do.
// A separate file rather than an inline script, so a strict Content-Security-Policy allows it.
document.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
  form.submit();
});
