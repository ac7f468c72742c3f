// Single sign-on for the dashboard: OpenID Connect's authorization code flow with
// PKCE, the flow for a page that can keep no secret. The browser goes to the
// identity provider, comes back with a code, and trades it (with the verifier only
// this tab holds) for an access token, which the page then sends as Bearer, as it
// does a password's session token. The server checks that token as it checks any.

const PENDING_KEY = "flightdeck-sso"; // the verifier and state, for the way back

// The provider the server names (GET /api/auth), or null: no single sign-on.
export async function ssoConfig() {
  try {
    const response = await fetch("/api/auth");
    return response.ok ? (await response.json()).oidc ?? null : null;
  } catch {
    return null; // the server is away: the page's own reconnecting says so
  }
}

async function discover(issuer) {
  const response = await fetch(`${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`);
  if (!response.ok) throw new Error(`The identity provider said ${response.status}.`);
  return response.json();
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomText(bytes) {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

async function challenge(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

// The redirect URI registered at the provider: this page, without its query.
function returnUrl() {
  return location.origin + location.pathname;
}

// Leave for the provider's sign-in; the page's own query (?now=, ?page=) is kept for the way back.
export async function signIn(config) {
  const provider = await discover(config.issuer);
  const verifier = randomText(32);
  const state = randomText(16);
  sessionStorage.setItem(PENDING_KEY, JSON.stringify({ verifier, state, search: location.search }));
  const url = new URL(provider.authorization_endpoint);
  // Added to, not replacing, its own query: some providers name a policy or tenant there.
  const asked = {
    response_type: "code",
    client_id: config.client_id,
    redirect_uri: returnUrl(),
    scope: config.scope,
    state,
    code_challenge: await challenge(verifier),
    code_challenge_method: "S256",
  };
  for (const [name, value] of Object.entries(asked)) url.searchParams.set(name, value);
  location.assign(url);
}

// The provider's /token answer as {access, refresh}; an Error saying why it gave none.
async function tokens(config, form) {
  const provider = await discover(config.issuer);
  const response = await fetch(provider.token_endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ client_id: config.client_id, ...form }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok || !body.access_token) {
    throw new Error(`The identity provider gave no token: ${body.error_description || body.error || response.status}.`);
  }
  return { access: body.access_token, refresh: body.refresh_token ?? null };
}

// A new access token for an expired one, with the refresh token the provider gave
// (providers that rotate them send a new one each time): no trip to the provider's page.
export async function refreshSignIn(config, refresh) {
  return tokens(config, { grant_type: "refresh_token", refresh_token: refresh });
}

// Back from the provider (?code=…&state=… or ?error=…): {access, refresh}. Null when
// this load is no return from a sign-in; an Error saying why when the sign-in failed.
export async function finishSignIn(config) {
  const pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) || "null");
  const answer = new URLSearchParams(location.search);
  if (!config || !pending || !(answer.has("code") || answer.has("error"))) return null;
  sessionStorage.removeItem(PENDING_KEY);
  history.replaceState(null, "", returnUrl() + pending.search); // the code leaves the address bar
  if (answer.has("error")) {
    throw new Error(`The identity provider refused: ${answer.get("error_description") || answer.get("error")}.`);
  }
  if (answer.get("state") !== pending.state) throw new Error("That sign-in answer was not for this page.");
  return tokens(config, {
    grant_type: "authorization_code",
    code: answer.get("code"),
    redirect_uri: returnUrl(),
    code_verifier: pending.verifier,
  });
}
