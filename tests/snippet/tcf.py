"""A CMP stub implementing ``__tcfapi`` (TCF v2.2 CMP API) for fixture pages, and the TC data
it hands to listeners, built by the consent package's test encoder (``tests.consent.tc_encoder``).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from tests.consent.tc_encoder import tcdata

#: A TCF CMP stub: ``__tcfapi`` with addEventListener/removeEventListener/ping, and
#: ``window.cmp.set(tcData)`` for the test to play the visitor's choices.
CMP_STUB = """
<script>
(() => {
  const listeners = new Map();
  let nextId = 1;
  let current = null;
  window.__tcfapi = (command, version, callback, parameter) => {
    if (command === 'ping') {
      return callback({gdprApplies: true, cmpLoaded: true, cmpStatus: 'loaded',
        displayStatus: 'hidden', apiVersion: '2.2', cmpId: 300, tcfPolicyVersion: 4}, true);
    }
    if (command === 'addEventListener') {
      const listenerId = nextId++;
      listeners.set(listenerId, callback);
      if (current) callback({...current, listenerId}, true);
      return;
    }
    if (command === 'removeEventListener') return callback(listeners.delete(parameter), true);
    callback(null, false);
  };
  window.cmp = {
    set(tcData) {
      current = tcData;
      for (const [listenerId, callback] of listeners) callback({...tcData, listenerId}, true);
    },
    listeners: () => listeners.size,
  };
})();
</script>
"""

#: The same CMP serving child frames: the ``__tcfapiLocator`` frame and the postMessage API.
CMP_LOCATOR = """
<iframe name="__tcfapiLocator" style="display:none" src="about:blank"></iframe>
<script>
window.addEventListener('message', (event) => {
  let data = event.data;
  if (typeof data === 'string') { try { data = JSON.parse(data); } catch (e) { return; } }
  const call = data && data.__tcfapiCall;
  if (!call) return;
  window.__tcfapi(call.command, call.version, (returnValue, success) => {
    event.source.postMessage({__tcfapiReturn: {returnValue, success, callId: call.callId}}, '*');
  }, call.parameter);
});
</script>
"""


def tc_data(
    purposes: Collection[int],
    vendors: Collection[int] = (),
    publisher_purposes: Collection[int] = (),
    event_status: str = "useractioncomplete",
) -> dict[str, Any]:
    """The TCData a CMP passes to ``addEventListener`` callbacks for these choices, with a TC
    string dated today (the collector refuses strings older than 13 months)."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    data: dict[str, Any] = tcdata(
        purposes_consent=set(purposes),
        vendor_consents=set(vendors),
        publisher_purposes_consent=set(publisher_purposes) if publisher_purposes else None,
        created=today,
    )
    data["eventStatus"] = event_status
    return data


def set_choice_js(data: dict[str, Any]) -> str:
    return f"window.cmp.set({json.dumps(data)})"
