// Deploy-time settings. The deploy step overwrites this file (it is plain data, no logic) so the
// same static bundle can point at any API without a rebuild. A `?api=` query parameter on the
// page URL still wins over this file; an empty apiBaseUrl means "same origin as the page".
// apiKey: a read key sent as X-Api-Key (`?key=` on the page URL wins). Leave it empty on a
// public site: anyone who can load the page could read the key; `make local` prints a
// dashboard URL with its own read key instead.
export default {
  apiBaseUrl: "http://127.0.0.1:8000",
  apiKey: "",
  pollIntervalMs: 2000,
  requestTimeoutMs: 5000,
  topPagesLimit: 10,
  feedLimit: 20,
  currency: "USD",
};
