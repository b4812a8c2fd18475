// The preview's reload client, inlined into every preview page (never into build/).
// Unlike livereload.js it knows the site's epoch, so a tab that reconnects after a
// restart reloads only if the site changed meanwhile, and it retries within a
// second instead of backing off for a minute. A batch of stylesheet edits is
// swapped in place; anything else reloads the page.
(function () {
  var epoch = document.currentScript.dataset.epoch;
  var retryDelay = 100;

  function swapStylesheet(path) {
    var swapped = false;
    document.querySelectorAll('link[rel~="stylesheet"]').forEach(function (link) {
      var url = new URL(link.href, location.href);
      if (url.origin !== location.origin || url.pathname !== path) return;
      url.searchParams.set("preview", epoch);
      var fresh = link.cloneNode();
      fresh.href = url.href;
      fresh.onload = fresh.onerror = function () { link.remove(); };
      link.after(fresh);
      swapped = true;
    });
    return swapped;
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + "/.livereload");
    socket.onopen = function () { retryDelay = 100; };
    socket.onmessage = function (event) {
      var message = JSON.parse(event.data);
      if (message.command === "hello") {
        if (message.epoch !== epoch) location.reload();
      } else if (message.command === "reload") {
        epoch = message.epoch;
        var stylesheets = message.stylesheets || [];
        if (!(stylesheets.length && stylesheets.every(swapStylesheet))) location.reload();
      }
    };
    socket.onclose = function () {
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 1000);
    };
  }

  connect();
})();
