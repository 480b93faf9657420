// The workspace's one script (no build step, no dependencies): live updates from /app/events
// and keyboard shortcuts. Pages work without it; it only saves reloading and reaching for the mouse.
(() => {
  "use strict";
  const page = document.body.dataset.page;
  const ticketId = document.body.dataset.ticket;

  // Live updates: a page with a live part (the inbox's list, the supervisor's queues) redraws it
  // when any ticket changes; a ticket page says when it changed (it never reloads under the
  // agent, who may be reading or typing).
  const live = document.querySelector("[data-live]");
  let pending = null;
  const redraw = async () => {
    const response = await fetch(location.href, { credentials: "same-origin" });
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html").getElementById(live.id);
    const current = document.getElementById(live.id);
    if (fresh && current) current.replaceWith(fresh);
  };
  if (window.EventSource && page) {
    const events = new EventSource("/app/events");
    events.addEventListener("ticket", (message) => {
      if (live) {
        // Several changes at once make one redraw.
        clearTimeout(pending);
        pending = setTimeout(redraw, 30);
      } else if (page === "ticket" && message.data === ticketId) {
        document.querySelector("#changed").hidden = false;
      }
    });
  }

  // A suggested article's link goes where the cursor is in the reply, not over what is written.
  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-insert]");
    const composer = document.querySelector("#body");
    if (!link || !composer) return;
    event.preventDefault();
    const at = composer.selectionStart ?? composer.value.length;
    const before = composer.value.slice(0, at);
    const gap = before && !before.endsWith("\n") ? "\n" : "";
    composer.value = before + gap + link.dataset.insert + "\n" + composer.value.slice(composer.selectionEnd ?? at);
    composer.focus();
  });

  // Keyboard: j / k move through the inbox, Enter opens, r replies, n writes a note, ? shows help.
  const rows = () => Array.from(document.querySelectorAll("#list tbody tr"));
  let selected = -1;
  const select = (index) => {
    const all = rows();
    if (all.length === 0) return;
    selected = Math.max(0, Math.min(all.length - 1, index));
    all.forEach((row, i) => row.classList.toggle("selected", i === selected));
    all[selected].querySelector("a").focus();
  };
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT") {
      if (event.key === "Escape") target.blur();
      return;
    }
    const composer = document.querySelector("#body");
    const internal = document.querySelector(".composer input[name=internal]");
    switch (event.key) {
      case "j": select(selected + 1); break;
      case "k": select(selected - 1); break;
      case "r": if (composer) { internal.checked = false; composer.focus(); event.preventDefault(); } break;
      case "n": if (composer) { internal.checked = true; composer.focus(); event.preventDefault(); } break;
      case "?": { const help = document.querySelector("#shortcuts"); if (help) help.hidden = !help.hidden; break; }
      default: return;
    }
  });
})();
