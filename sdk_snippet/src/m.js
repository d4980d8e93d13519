// Mesure tracker: <script defer src="https://stats.example.eu/m.js" data-site="example"></script>
// Readable ES2017; `node build.mjs` minifies it into dist/m.js, the file the collector serves.
// Every opt-out and consent check runs before any request, nothing here may throw into the host
// page, and nothing the visitor's consent mode does not allow leaves the browser (DESIGN.md §3).
// Terse on purpose: the whole build has a gzip budget, enforced by tests/snippet.
(() => {
  // Every entry point that the page or the browser calls goes through this guard.
  const guard = (fn) => (...args) => {
    try {
      return fn(...args);
    } catch (e) {}
  };
  guard(() => {
    const w = window;
    const d = document;
    const nav = navigator;
    const loc = location;
    const data = d.currentScript.dataset;
    const endpoint = new URL(data.api || d.currentScript.src).origin;
    // Modes by rank, most restrictive first: the lowest rank among all signals wins.
    const MODES = ['optout', 'denied', 'exempt', 'granted'];
    // `exempt` turns to `denied` on a site that does not use the exemption (data-default-mode).
    const exemptRank = data.defaultMode == 'denied' ? 1 : 2;
    const ID = 'mesure_id';
    const OPTOUT = 'mesure_optout';
    // 13 months, in seconds: the client id's lifetime from its creation, never extended.
    const LIFETIME = 34128e3;
    // Consent signals once known, as ranks: e (explicit API call), t (IAB TCF), g (Consent Mode).
    const signals = {};
    const pending = [];
    const callbacks = {};
    let tcf, gcm, uid, waiting, ready, lastUrl;
    let shownAt = 0;
    let engaged = 0;
    let referrer = d.referrer || undefined;
    const now = () => Date.now();
    const on = (target, type, fn) => target.addEventListener(type, guard(fn));

    // First-party storage: localStorage, else a cookie. No value reads; a falsy value removes.
    const store = (key, value) => {
      try {
        return value === undefined ? localStorage[key] : value ? (localStorage[key] = value) : delete localStorage[key];
      } catch (e) {
        if (value === undefined) return (d.cookie.match(key + '=([^;]+)') || [])[1];
        d.cookie = `${key}=${value};path=/;max-age=${value ? LIFETIME : 0}`;
      }
    };

    const rank = () => {
      const known = Object.values(signals);
      const r = Math.min(store(OPTOUT) || (nav.globalPrivacyControl && !('ignoreGpc' in data)) ? 0 : 3, ...(known[0] + 1 ? known : [2]));
      return r == 2 ? exemptRank : r;
    };
    // The storage rule of the current mode applies at once, whichever way the mode changed.
    const applyMode = () => rank() < 2 && store(ID, 0);

    // The client id, created on first use; a new one replaces it LIFETIME after its creation.
    const clientId = () => {
      let [id, created] = (store(ID) || '').split('.');
      if (!(now() - created < LIFETIME * 1e3)) store(ID, (id = crypto.getRandomValues(new Uint32Array(4)).join('-')) + '.' + now());
      return id;
    };

    const pageUrl = () => ('hash' in data ? loc.href.replace(/\/?#\/?/, '/') : loc.href.split('#')[0]);

    const send = (name, o, beacon) => {
      if (!ready) return pending.push([name, o]);
      const r = rank();
      // Nothing at all for `optout`; no engagement time for `denied`; `exempt` keeps pageviews
      // and technical events only (EXEMPT_EVENTS of consent/field_policy.py).
      if (r <= !!o.engaged_ms || (r == 2 && !/^(pageview|outbound|download|engagement|404)$/.test(name))) return;
      // Below its rank a field stays in the browser. Outbound and download clicks (o.click) carry
      // their target, technical data that the exemption allows; free properties need consent.
      const body = JSON.stringify(
        Object.assign({ site: data.site, name, url: pageUrl(), mode: MODES[r], tcf, gcm, cid: r > 1 && clientId(), screen: innerWidth, uid }, o),
        (key, value) => (r < { cid: 2, screen: 2, referrer: 2, engaged_ms: 2, props: o.click ? 2 : 3, uid: 3, revenue: 3, click: 9 }[key] ? undefined : value),
      );
      beacon
        ? nav.sendBeacon(endpoint + '/api/hit', body)
        : fetch(endpoint + '/api/hit', { method: 'POST', keepalive: true, credentials: 'omit', body }).catch(() => {});
    };

    // Engagement: time the page was visible, sent when it is hidden or left by SPA navigation.
    const sendEngagement = (beacon) => {
      engaged += shownAt && now() - shownAt;
      shownAt = !d.hidden && now();
      if (engaged > 0 && lastUrl) send('engagement', { url: lastUrl, engaged_ms: engaged }, beacon);
      engaged = 0;
    };

    const pageview = () => {
      if (pageUrl() != lastUrl) {
        sendEngagement();
        lastUrl = pageUrl();
        send('pageview', { referrer });
        referrer = undefined;
      }
    };

    const start = () => {
      if (ready || d.prerendering || waiting) return;
      ready = 1;
      pageview();
      pending.map((args) => send(...args));
    };

    const commands = {
      event: (name, o) => name && send(`${name}`, { props: (o = o || {}).props, revenue: o.revenue }),
      pageview,
      user: (id) => (uid = id ? `${id}` : undefined),
      consent: (mode) => {
        const r = MODES.indexOf(mode);
        if (r < 0) return;
        signals.e = r;
        // The API's own opt-out flag is lifted by a later choice; the opt-out page's is not.
        if (!r) store(OPTOUT, 'api');
        else if (store(OPTOUT) == 'api') store(OPTOUT, 0);
        applyMode();
      },
    };

    // The opt-out page (/optout on the collector): framed by the site, it posts its choice here;
    // linked, it sends the visitor back to the site with #mesure-optout (or #mesure-optin).
    const optOut = (choice) => {
      store(OPTOUT, choice == 'optout' && 'page');
      applyMode();
    };

    // IAB TCF v2.2: granted needs purpose 1 and purpose 8 or 9, as core or publisher purposes,
    // and the vendor of data-tcf-vendor when it is set. Anything else is `exempt` at most.
    const onTcData = guard((t, ok) => {
      if (!ok || t.eventStatus == 'cmpuishown') return;
      const consents = (id) => t.purpose.consents[id] || t.publisher.consents[id];
      tcf = t.tcString || undefined;
      if (t.gdprApplies === false) delete signals.t;
      else signals.t = consents(1) && (consents(8) || consents(9)) && (!data.tcfVendor || t.vendor.consents[data.tcfVendor]) ? 3 : 2;
      applyMode();
      waiting = 0;
      start();
    });

    // Google Consent Mode v2: gtag('consent', 'default'|'update', {...}) in the dataLayer.
    const readLayer = guard((entry) => {
      const value = entry[0] == 'consent' && entry[2].analytics_storage;
      // A regional default cannot be checked here, so only its restrictive value counts.
      if (!value || (entry[2].region && value == 'granted' && entry[1] == 'default')) return;
      gcm = { analytics_storage: value };
      signals.g = value == 'granted' ? 3 : 2;
      applyMode();
    });

    const back = /^#mesure-(optout|optin)$/.exec(loc.hash);
    if (back) {
      optOut(back[1]);
      history.replaceState(history.state, '', loc.href.split('#')[0]);
    }
    on(w, 'message', (e) => {
      let m = e.data;
      try {
        m = JSON.parse(m);
      } catch (x) {}
      const ret = m.__tcfapiReturn;
      if (ret) callbacks[ret.callId](ret.returnValue, ret.success);
      // {mesure: choice} applies the choice; {mesureId: 1} only asks. The answer confirms what
      // is stored, and the client id, which the page shows for access and erasure requests.
      if (e.origin == endpoint && (m.mesure || m.mesureId)) {
        if (m.mesure) optOut(m.mesure);
        e.source.postMessage({ mesure: store(OPTOUT) ? 'optout' : 'optin', id: (store(ID) || '').split('.')[0] }, endpoint);
      }
    });

    const queue = (w.mesure && w.mesure.q) || [];
    w.mesure = guard((command, ...args) => commands[command](...args));
    // Local pages and automated browsers are not visitors; the API stays callable.
    if (
      (!('allowLocal' in data) && (/^(localhost|127\.|\[::1\])/.test(loc.hostname) || loc.protocol == 'file:')) ||
      (nav.webdriver && !('allowAutomation' in data))
    )
      return;

    const layer = (w.dataLayer = w.dataLayer || []);
    const push = layer.push;
    [].map.call(layer, readLayer);
    layer.push = function (...entries) {
      entries.map(readLayer);
      return push.apply(this, entries);
    };

    // Queued calls run first: a consent call waiting there applies to the first pageview,
    // which a CMP answering at once may trigger below.
    queue.map((args) => w.mesure(...args));
    applyMode();

    // The CMP lives in this window or in an ancestor that holds a __tcfapiLocator frame.
    let tcfapi = w.__tcfapi;
    for (let f = w; !tcfapi; f = f.parent) {
      try {
        if (f.frames.__tcfapiLocator) {
          tcfapi = (command, version, callback) => {
            const callId = Math.random();
            callbacks[callId] = callback;
            f.postMessage({ __tcfapiCall: { command, version, callId } }, '*');
          };
        }
      } catch (e) {}
      if (f == top) break;
    }
    if (tcfapi) {
      waiting = 1;
      setTimeout(guard(() => (waiting = 0) || start()), data.consentWait || 1e3);
      guard(tcfapi)('addEventListener', 2, onTcData);
    }

    for (const method of ['pushState', 'replaceState']) {
      const original = history[method];
      history[method] = function (...args) {
        original.apply(this, args);
        guard(pageview)();
      };
    }
    on(w, 'popstate', pageview);
    if ('hash' in data) on(w, 'hashchange', pageview);
    on(d, 'visibilitychange', () => (d.hidden ? sendEngagement(1) : (shownAt = now())));
    const click = (e) => {
      const a = e.target.closest('a[href]');
      const name = e.button < 2 && (/^http/.test(a.protocol) && a.host != loc.host ? 'outbound' : RegExp(`\\.(${data.downloads || 'pdf|zip|gz|dmg|exe|msi|csv|xlsx?|docx?|pptx?|epub|mp[34]'})$`, 'i').test(a.pathname) && 'download');
      if (name) send(name, { click: 1, props: { url: a.href.split(/[?#]/)[0] } });
    };
    on(d, 'click', click);
    on(d, 'auxclick', click);
    on(d, 'prerenderingchange', start);
    start();
  })();
})();
