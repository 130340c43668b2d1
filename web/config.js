// Deploy-time settings. The deploy step overwrites this file (it is plain data, no logic) so the
// same static bundle can point at any API without a rebuild. A `?api=` query parameter on the
// page URL still wins over this file; an empty apiBaseUrl means "same origin as the page".
export default {
  apiBaseUrl: "http://127.0.0.1:8000",
  pollIntervalMs: 2000,
  requestTimeoutMs: 5000,
  topPagesLimit: 10,
  feedLimit: 20,
  currency: "USD",
};
