// Shows the consent banner of the example when the visitor has not chosen yet.
(() => {
  const banner = document.getElementById('consent-banner');
  if (!banner || !window.demoConsent) return;
  banner.hidden = !window.demoConsent.needed;
  for (const [id, accepted] of [['accept', true], ['refuse', false]]) {
    document.getElementById(id).addEventListener('click', () => {
      window.demoConsent.choose(accepted);
      banner.hidden = true;
    });
  }
})();
