/*
 * What a person sees when an htmx action fails for real (404, 500, a lost connection).
 *
 * Refusals (400/403/409/422) are swapped into their panel by the responseHandling rule of
 * base.html's htmx-config. Any other error is not swapped, so the page stays as it was;
 * this script says so next to the control that was used, in place of a silent no-op.
 * (django-htmx's debug handler, which replaced the whole document with the error page, is
 * deliberately not loaded: base.html includes htmx itself, not the htmx_script tag.)
 */
(function () {
  "use strict";

  function describe(xhr) {
    if (!xhr || !xhr.status) {
      return "The server could not be reached. Nothing was changed; check the connection and try again.";
    }
    if (xhr.status === 404) {
      return "Something went wrong: this item no longer exists (404). Reload the page to see the current state.";
    }
    return "Something went wrong on the server (" + xhr.status + "). Nothing was changed by this page; try again, or reload the page.";
  }

  function show(element, text) {
    var anchor = element.closest("form") || element;
    var note = anchor.nextElementSibling;
    if (!note || !note.classList.contains("htmx-error")) {
      note = document.createElement("div");
      note.className = "alert alert-error htmx-error";
      note.setAttribute("role", "alert");
      anchor.insertAdjacentElement("afterend", note);
    }
    note.textContent = text;
  }

  function clear(element) {
    var anchor = element.closest("form") || element;
    var note = anchor.nextElementSibling;
    if (note && note.classList.contains("htmx-error")) {
      note.remove();
    }
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    clear(event.detail.elt);
  });
  document.addEventListener("htmx:responseError", function (event) {
    show(event.detail.elt, describe(event.detail.xhr));
  });
  document.addEventListener("htmx:sendError", function (event) {
    show(event.detail.elt, describe(null));
  });
})();
