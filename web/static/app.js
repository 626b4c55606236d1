// Progressive enhancement only: every page works without this file. It counts a tweet's
// characters as the API does, and likes without leaving the page (so you keep your place
// and your history). On any trouble it lets the form go the plain way, which says what
// went wrong.
"use strict";

(function () {
  // The API counts code points once the text is trimmed, CRLF as one: "😀" is 1, not 2.
  function tweetLength(text) {
    return Array.from(text.replace(/\r\n?/g, "\n").trim()).length;
  }

  document.querySelectorAll("textarea[data-limit]").forEach(function (box) {
    var counter = document.getElementById(box.getAttribute("aria-describedby"));
    var limit = Number(box.dataset.limit);
    function update() {
      var length = tweetLength(box.value);
      counter.textContent = length + "/" + limit;
      counter.classList.toggle("over", length > limit);
    }
    box.addEventListener("input", update);
    update();
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList.contains("like-form") || !window.fetch) {
      return;
    }
    event.preventDefault();
    if (form.dataset.busy) {
      return;  // one like per click, even on a slow answer
    }
    form.dataset.busy = "1";
    var button = form.querySelector("button");
    fetch(form.action, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      headers: {"Accept": "application/json"},
      credentials: "same-origin"
    }).then(function (response) {
      if (!response.ok) {
        throw new Error("HTTP " + response.status);
      }
      return response.json();
    }).then(function (answer) {
      button.querySelector(".count").textContent = answer.likes.toLocaleString("en-US");
      button.setAttribute("aria-label", answer.label);
      form.elements.idem.value = answer.idem;  // the next like is a new one
      delete form.dataset.busy;
    }).catch(function () {
      form.submit();
    });
  });

  var summary = document.getElementById("error-summary");
  if (summary) {
    summary.focus();
  }
})();
