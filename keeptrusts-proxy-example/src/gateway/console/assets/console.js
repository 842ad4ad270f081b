// keeptrusts console: the only script. Served from the binary; no inline script anywhere.
// It shows times in the viewer's time zone, money in the viewer's locale, copies new keys, and
// submits the team switcher on change. Every page works without it (times then read UTC).
(function () {
  'use strict';
  function ready(fn) {
    if (document.readyState !== 'loading') fn();
    else document.addEventListener('DOMContentLoaded', fn);
  }
  ready(function () {
    var dt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
    var d = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeZone: 'UTC' });
    document.querySelectorAll('time[datetime]').forEach(function (el) {
      var t = new Date(el.getAttribute('datetime'));
      if (isNaN(t.getTime())) return;
      el.title = el.getAttribute('datetime');
      el.textContent = el.hasAttribute('data-day') ? d.format(t) : dt.format(t);
    });
    document.querySelectorAll('data.money').forEach(function (el) {
      var v = el.getAttribute('value');
      var cur = el.getAttribute('data-currency') || 'USD';
      var decimals = (v.split('.')[1] || '').length;
      try {
        el.textContent = new Intl.NumberFormat(undefined, {
          style: 'currency', currency: cur,
          minimumFractionDigits: Math.min(Math.max(decimals, 2), 20),
          maximumFractionDigits: Math.min(Math.max(decimals, 2), 20)
        }).format(Number(v));
      } catch (e) { /* an unknown currency code keeps the server's text */ }
    });
    document.querySelectorAll('button[data-copy]').forEach(function (b) {
      b.addEventListener('click', function () {
        var el = document.getElementById(b.getAttribute('data-copy'));
        if (!el) return;
        var text = el.textContent;
        var done = function () { b.textContent = 'Copied'; };
        if (navigator.clipboard && navigator.clipboard.writeText) {
          navigator.clipboard.writeText(text).then(done, function () { select(el); });
        } else {
          select(el);
        }
      });
    });
    function select(el) {
      var r = document.createRange();
      r.selectNodeContents(el);
      var s = window.getSelection();
      s.removeAllRanges();
      s.addRange(r);
    }
    document.querySelectorAll('select[data-autosubmit]').forEach(function (s) {
      s.addEventListener('change', function () { if (s.form) s.form.submit(); });
    });
  });
})();
