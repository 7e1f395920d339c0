// Arbiter dashboard: live fragments over Server-Sent Events, and the timeline's details on click.
// Fragments are rendered (and escaped) by the server; this script never builds markup from data.
(function () {
  'use strict';

  function showDetail(event) {
    var bar = event.target.closest ? event.target.closest('.bar') : null;
    var panel = document.getElementById('detail');
    if (bar && panel) {
      panel.textContent = bar.getAttribute('data-summary');
    }
  }

  function setConnection(text) {
    var badge = document.getElementById('connection');
    if (!badge) {
      return;
    }
    badge.hidden = !text;
    badge.textContent = text || '';
  }

  function follow(url) {
    var live = document.getElementById('live');
    if (!live || typeof EventSource === 'undefined') {
      return;
    }
    var source = new EventSource(url);
    source.addEventListener('fragment', function (message) {
      live.innerHTML = message.data;
      setConnection('');
      document.body.setAttribute('data-updates', String(Number(document.body.getAttribute('data-updates') || 0) + 1));
    });
    source.addEventListener('unavailable', function (message) {
      setConnection(message.data);
    });
    source.addEventListener('gone', function (message) {
      setConnection(message.data);
      source.close();
    });
    source.addEventListener('end', function () {
      source.close();
      document.body.setAttribute('data-finished', 'true');
    });
    source.onerror = function () {
      // EventSource reconnects by itself; say so while it does.
      if (source.readyState !== EventSource.CLOSED) {
        setConnection('connection lost, reconnecting…');
      }
    };
  }

  document.addEventListener('click', showDetail);
  var stream = document.body.getAttribute('data-stream');
  if (stream) {
    follow(stream);
  }
})();
