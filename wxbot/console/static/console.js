// Console behaviour shared by every page (no inline handlers: the Content-Security-Policy forbids them).
(function () {
  // A form or button with data-confirm asks once before the request is sent.
  document.addEventListener("submit", function (event) {
    var button = event.submitter, form = event.target;
    var message = (button && button.dataset.confirm) || form.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });
})();
