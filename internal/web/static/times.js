// Shows every <time class="local"> in the reader's own time zone and
// words: "5 minutes ago · Tue 1 Dec, 14:03". The server's text (relative,
// from its clock) is what shows without script; the full local date and
// time go in the tooltip. Only textContent and title are set.
(function () {
  'use strict';

  function relative(ms) {
    const s = Math.round(ms / 1000);
    if (Math.abs(s) < 60) return 'just now';
    if (typeof Intl === 'undefined' || !Intl.RelativeTimeFormat) return null;
    const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
    const m = Math.round(s / 60);
    if (Math.abs(m) < 60) return rtf.format(-m, 'minute');
    const h = Math.round(m / 60);
    if (Math.abs(h) < 24) return rtf.format(-h, 'hour');
    return rtf.format(-Math.round(h / 24), 'day');
  }

  function show(t) {
    const d = new Date(t.dateTime);
    if (isNaN(d.getTime())) return;
    const rel = relative(Date.now() - d.getTime());
    const local = d.toLocaleString([], { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
    t.textContent = rel ? rel + ' · ' + local : local;
    t.title = d.toLocaleString();
  }

  function update() {
    document.querySelectorAll('time.local').forEach(show);
  }

  update();
  // Relative times go stale on a page left open.
  setInterval(update, 30000);
})();
