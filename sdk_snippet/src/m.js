// Mesure tracker: <script defer src="https://stats.example.eu/m.js" data-site="example"></script>
// Readable ES2017; `node build.mjs` minifies it into dist/m.js, the file the collector serves.
// Every opt-out and consent check runs before any request, nothing here may throw into the host
// page, and nothing the visitor's consent mode does not allow leaves the browser
// (docs/design.md §3).
// Terse on purpose: the whole build has a gzip budget, enforced by tests/snippet.
(() => {
  // Every entry point that the page or the browser calls goes through this guard.
  const guard = (fn) => (...args) => {
    try {
      fn(...args);
    } catch (e) {}
  };
  guard(() => {
    const w = window;
    const d = document;
    const nav = navigator;
    const loc = location;
    const hist = history;
    const data = d.currentScript.dataset;
    const endpoint = new URL(data.api || d.currentScript.src).origin;
    // Modes by rank, most restrictive first: the lowest rank among all signals wins.
    const MODES = ['optout', 'denied', 'exempt', 'granted'];
    const ID = 'mesure_id';
    const OPTOUT = 'mesure_optout';
    // 13 months, in seconds: the client id's lifetime from its creation, never extended.
    const LIFETIME = 34128e3;
    const pending = [];
    // Consent signals as ranks, 4 while unknown: explicit API call, IAB TCF, Consent Mode.
    let explicit = 4;
    let tcfRank = 4;
    let gcmRank = 4;
    let tcf, gcm, uid, waiting, ready, lastUrl, shownAt, cmpFrame;
    const on = (target, type, fn) => target.addEventListener(type, guard(fn));

    // First-party storage: localStorage, else a cookie. No value (or null) reads; a falsy value
    // removes.
    const store = (key, value) => {
      try {
        if (value == null) return localStorage[key];
        value ? (localStorage[key] = value) : delete localStorage[key];
      } catch (e) {
        if (value == null) return (d.cookie.match(key + '=([^;]+)') || [])[1];
        d.cookie = `${key}=${value};path=/;max-age=${value ? LIFETIME : 0}`;
      }
    };

    // The mode now: the opt-out flag or GPC beat everything; then the most restrictive known
    // signal, else the site's default; `exempt` turns to `denied` on a site that does not use
    // the exemption (data-default-mode). Its storage rule applies at once, whichever way the
    // mode changed, so every signal calls this as soon as it changes.
    const rank = () => {
      let r = Math.min(store(OPTOUT) || (nav.globalPrivacyControl && !('ignoreGpc' in data)) ? 0 : 4, explicit, tcfRank, gcmRank);
      r = r > 3 || r == 2 ? (data.defaultMode == 'denied' ? 1 : 2) : r;
      if (r < 2) store(ID, 0);
      return r;
    };

    // The client id, created on first use; a new one replaces it LIFETIME after its creation.
    const clientId = () => {
      let [id, created] = (store(ID) || '').split('.');
      if (!(Date.now() - created < LIFETIME * 1e3)) store(ID, (id = crypto.getRandomValues(new Uint32Array(4)).join('-')) + '.' + Date.now());
      return id;
    };

    // A hit carries the fields of every mode up to the current one: `exempt` adds the id, the
    // screen width and the `exempt` fields given (referrer, engagement time, the target of a
    // click: technical data that the exemption allows); `granted` adds the user id and the
    // `granted` fields (free properties, revenue). Hits carry the URL of the last pageview.
    const send = (name, exempt, granted) => {
      if (!ready) return pending.push([name, exempt, granted]);
      const r = rank();
      // Nothing at all for `optout`; no engagement time for `denied`; `exempt` keeps pageviews
      // and technical events only (EXEMPT_EVENTS of consent/field_policy.py): of the custom
      // events (those with `granted` fields), only 404.
      if (r <= (name == 'engagement') || (r == 2 && granted && name != '404')) return;
      const body = JSON.stringify(
        Object.assign(
          { site: data.site, name, url: lastUrl, mode: MODES[r], tcf, gcm },
          r > 1 && { cid: clientId(), screen: innerWidth },
          r > 1 && exempt,
          r > 2 && { uid },
          r > 2 && granted,
        ),
      );
      // keepalive: the request outlives the page (engagement is sent as the page is hidden or
      // left), like a beacon, but without credentials, which a beacon always sends. Any
      // function handles the rejection of a fetch to a collector that is down; rank(), already
      // at hand, is a harmless one.
      fetch(endpoint + '/api/hit', { method: 'POST', keepalive: true, credentials: 'omit', body }).catch(rank);
    };

    // Engagement: time the page was visible, sent when it is hidden or left by SPA navigation,
    // for the URL of the last pageview.
    const sendEngagement = () => {
      const ms = shownAt && Date.now() - shownAt;
      shownAt = !d.hidden && Date.now();
      if (ms > 0) send('engagement', { engaged_ms: ms });
    };

    const pageview = () => {
      const url = 'hash' in data ? loc.href.replace(/\/?#\/?/, '/') : loc.href.split('#')[0];
      if (url != lastUrl) {
        sendEngagement();
        // Only the first pageview of a page load has a referrer.
        const referrer = (!lastUrl && d.referrer) || undefined;
        lastUrl = url;
        send('pageview', { referrer });
      }
    };

    const start = () => {
      if (ready || d.prerendering || waiting) return;
      ready = 1;
      pageview();
      pending.map((args) => send(...args));
    };
    const release = () => {
      waiting = 0;
      start();
    };

    const commands = {
      event: (name, o) => name && send(`${name}`, 0, { props: (o = o || {}).props, revenue: o.revenue }),
      pageview,
      user: (id) => (uid = id ? `${id}` : undefined),
      consent: (mode) => {
        const r = MODES.indexOf(mode);
        if (r < 0) return;
        explicit = r;
        // The API's own opt-out flag is lifted by a later choice; the opt-out page's is not.
        const flag = store(OPTOUT);
        store(OPTOUT, r ? flag != 'api' && flag : flag || 'api');
        rank();
      },
    };

    // The opt-out page (/optout on the collector): framed by the site, it posts its choice here;
    // linked, it sends the visitor back to the site with #mesure-optout, or with #mesure-SECRET
    // to lift the flag. The page's flag is that secret, random and new at each opt-out: no link
    // that someone else crafts can hold it.
    const optOut = (choice) => {
      store(OPTOUT, choice == 'optout' && crypto.getRandomValues(new Uint32Array(4)).join('-'));
      rank();
    };

    // IAB TCF v2.2, mapped as the consent package maps the TC string: granted needs purpose 1
    // and purpose 8 or 9, as core or publisher purposes, and the vendor of data-tcf-vendor when
    // it is set. Anything else is `exempt` at most. Where GDPR does not apply, the TC data has
    // no purposes and TCF is not a signal.
    const onTcData = guard((t, ok) => {
      if (!ok || t.eventStatus == 'cmpuishown') return;
      const consents = (id) => t.purpose.consents[id] || t.publisher.consents[id];
      // Read first: an answer that is not TC data (to another script's call) throws here.
      tcfRank =
        t.gdprApplies === false ? 4 : consents(1) && (consents(8) || consents(9)) && (!data.tcfVendor || t.vendor.consents[data.tcfVendor]) ? 3 : 2;
      tcf = t.tcString || undefined;
      rank();
      release();
    });

    // Google Consent Mode v2: gtag('consent', 'default'|'update', {...}) in the dataLayer.
    const readLayer = guard((entry) => {
      const value = entry[0] == 'consent' && entry[2].analytics_storage;
      // A regional default cannot be checked here, so only its restrictive value counts.
      if (!value || (entry[2].region && value == 'granted' && entry[1] == 'default')) return;
      gcm = { analytics_storage: value };
      gcmRank = value == 'granted' ? 3 : 2;
      rank();
    });

    // Any link may opt out: that only lessens measurement, and its author cannot know the new
    // secret. Only the secret lifts the flag; being digits, below 'a', it is never the API's
    // 'api' or the 'page' that older trackers stored, which a link could name.
    const back = loc.hash.split('#mesure-')[1];
    if (back) {
      if (back == 'optout' || (back < 'a' && back == store(OPTOUT))) optOut(back);
      hist.replaceState(hist.state, '', loc.href.split('#')[0]);
    }
    on(w, 'message', (e) => {
      const m = e.data;
      const ret = m.__tcfapiReturn;
      // Only the window of the CMP found below may answer (no other frame can pass for it), with
      // an object as the call is one. Any answer of it that is TC data is its current state,
      // whoever asked for it.
      if (ret && e.source === cmpFrame) onTcData(ret.returnValue, ret.success);
      // {mesure: choice} applies the choice; {mesureId: 1} only asks, as any other message of the
      // collector's origin, which holds the id anyway. The answer says whether the flag is stored,
      // and gives the client id, which the page shows for access and erasure.
      if (e.origin == endpoint) {
        if (m.mesure) optOut(m.mesure);
        e.source.postMessage({ mesure: !!store(OPTOUT), id: (store(ID) || '').split('.')[0] }, endpoint);
      }
    });

    const queue = (w.mesure && w.mesure.q) || [];
    w.mesure = guard((command, ...args) => commands[command](...args));
    // Local pages (file: has no hostname) and automated browsers are not visitors; the API stays
    // callable.
    if ((!('allowLocal' in data) && /^(localhost|127\.|\[::1\]|$)/.test(loc.hostname)) || (nav.webdriver && !('allowAutomation' in data))) return;

    // The page's own method runs as before, then `after` sees its arguments.
    const wrap = (target, method, after) => {
      const original = target[method];
      target[method] = (...args) => {
        const result = original.apply(target, args);
        guard(after)(args);
        return result;
      };
    };
    const layer = (w.dataLayer = w.dataLayer || []);
    [...layer].map(readLayer);
    wrap(layer, 'push', (entries) => entries.map(readLayer));

    // Queued calls run first: a consent call waiting there applies to the first pageview,
    // which a CMP answering at once may trigger below.
    queue.map((args) => w.mesure(...args));
    rank();

    // The CMP lives in this window, or in an ancestor that holds a __tcfapiLocator frame (an
    // ancestor of another origin throws when it has none). The first pageview waits for its
    // answer, at most data-consent-wait ms.
    waiting = 1;
    setTimeout(guard(release), data.consentWait || 1e3);
    try {
      if (w.__tcfapi) w.__tcfapi('addEventListener', 2, onTcData);
      else {
        // window.frames is the window itself: its named properties include its child frames.
        let f = w;
        for (; !f.__tcfapiLocator; f = f.parent) if (f == top) throw 0;
        cmpFrame = f;
        f.postMessage({ __tcfapiCall: { command: 'addEventListener', version: 2, callId: 1 } }, '*');
      }
    } catch (e) {
      waiting = 0;
    }

    wrap(hist, 'pushState', pageview);
    wrap(hist, 'replaceState', pageview);
    // Without data-hash, a hash change leaves the URL of pageview() as it was: no pageview.
    on(w, 'popstate', pageview);
    on(w, 'hashchange', pageview);
    on(d, 'visibilitychange', sendEngagement);
    // Outbound (another host; mailto: and the like have none) and download clicks, middle
    // clicks included; an <a> without href has neither host nor path.
    const click = (e) => {
      const a = e.target.closest('a');
      // The linked opt-out page gets the secret in its fragment, never sent over the network,
      // to hand it back when its visitor chooses to be measured again.
      if (a.pathname == '/optout' && a.origin == endpoint) a.hash = store(OPTOUT) || '';
      const name = e.button < 2 && (a.host != loc.host ? a.host && 'outbound' : RegExp(`\\.(${data.downloads || 'pdf|zip|gz|dmg|exe|msi|csv|xlsx?|docx?|pptx?|epub|mp[34]'})$`, 'i').test(a.pathname) && 'download');
      if (name) send(name, { props: { url: a.origin + a.pathname } });
    };
    on(d, 'click', click);
    on(d, 'auxclick', click);
    on(d, 'prerenderingchange', start);
    start();
  })();
})();
