// The code page's CasePilot box: the question is posted in place and the answer (the same
// fragment /assistant renders without JavaScript) appears in the box.
(function () {
  "use strict";
  document.querySelectorAll("form.assistant-form[data-fragment]").forEach(function (form) {
    var out = form.parentNode.querySelector(".assistant-answer");
    var button = form.querySelector("button[type=submit]");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var body = new FormData(form);
      body.set("fragment", "1");
      button.disabled = true;
      out.setAttribute("aria-busy", "true");
      fetch(form.action, { method: "POST", body: body, credentials: "same-origin" })
        .then(function (response) { return response.text(); })
        .then(function (html) {
          out.innerHTML = html;
          // Follow-up questions continue the same conversation.
          var said = out.querySelector("[data-conversation]");
          if (said) {
            var field = form.querySelector("input[name=conversation]");
            if (!field) {
              field = document.createElement("input");
              field.type = "hidden";
              field.name = "conversation";
              form.appendChild(field);
            }
            field.value = said.getAttribute("data-conversation");
          }
          form.querySelector("textarea").value = "";
        })
        .catch(function () {
          out.textContent = "CasePilot did not answer: check your connection and try again.";
        })
        .then(function () {
          button.disabled = false;
          out.removeAttribute("aria-busy");
        });
    });
  });
})();
