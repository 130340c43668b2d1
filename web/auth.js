// Sign-in to the stack's Cognito user pool, for a dashboard whose read endpoints sit behind
// API Gateway's Cognito authorizer (config.js `auth.cognito`, written by `make deploy`).
//
// The page talks to Cognito's own API (InitiateAuth / RespondToAuthChallenge, no AWS
// signature needed) with USER_PASSWORD_AUTH: the password goes to Cognito over TLS and never
// to our API. Tokens live in sessionStorage (gone with the tab, never shared with other
// sites); the ID token is what the authorizer checks, renewed with the refresh token a minute
// before it expires. Users are created by an administrator (the pool allows no self sign-up),
// so the first sign-in asks for a new password (NEW_PASSWORD_REQUIRED).

const STORAGE_KEY = "clickstream.session";
const RENEW_BEFORE_S = 60;

/** A failed sign-in step, with words a person can act on. */
export class SignInError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "SignInError";
    this.code = code;
  }
}

const MESSAGES = {
  NotAuthorizedException: "Wrong e-mail or password.",
  UserNotFoundException: "Wrong e-mail or password.",
  PasswordResetRequiredException: "Your password must be reset by an administrator.",
  UserNotConfirmedException: "This account is not confirmed yet.",
  InvalidPasswordException: "That password does not meet the pool's rules (length, cases, digits).",
  TooManyRequestsException: "Too many attempts; wait a minute and try again.",
  LimitExceededException: "Too many attempts; wait a minute and try again.",
};

/** The claims of a JWT (no verification: API Gateway verifies; this only reads `exp`). */
export function jwtClaims(token) {
  const payload = token.split(".")[1] ?? "";
  const base64 = payload.replace(/-/g, "+").replace(/_/g, "/");
  const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
  return JSON.parse(atob(padded));
}

export class CognitoSession {
  /**
   * @param {{region: string, userPoolClientId: string, endpoint?: string}} settings
   * @param {Storage} [storage]
   */
  constructor(settings, storage = window.sessionStorage) {
    this.clientId = settings.userPoolClientId;
    this.endpoint = settings.endpoint || `https://cognito-idp.${settings.region}.amazonaws.com/`;
    this.storage = storage;
  }

  async call(operation, body) {
    let response;
    try {
      response = await fetch(this.endpoint, {
        method: "POST",
        headers: {
          "Content-Type": "application/x-amz-json-1.1",
          "X-Amz-Target": `AWSCognitoIdentityProviderService.${operation}`,
        },
        body: JSON.stringify(body),
        credentials: "omit",
        cache: "no-store",
      });
    } catch {
      throw new SignInError("network", "Could not reach the sign-in service.");
    }
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      const code = String(answer.__type ?? "").split("#").pop() || `HTTP ${response.status}`;
      throw new SignInError(code, MESSAGES[code] ?? `Sign-in failed (${code}).`);
    }
    return answer;
  }

  /** Email + password. Resolves to "signed-in", or to a challenge the form must answer. */
  async signIn(username, password) {
    const answer = await this.call("InitiateAuth", {
      AuthFlow: "USER_PASSWORD_AUTH",
      ClientId: this.clientId,
      AuthParameters: { USERNAME: username, PASSWORD: password },
    });
    if (answer.ChallengeName === "NEW_PASSWORD_REQUIRED") {
      return { challenge: "NEW_PASSWORD_REQUIRED", session: answer.Session, username };
    }
    if (answer.ChallengeName) {
      throw new SignInError(answer.ChallengeName,
        `This account needs a sign-in step the dashboard does not offer (${answer.ChallengeName}).`);
    }
    this.store(answer.AuthenticationResult, username);
    return { signedIn: true };
  }

  /** Answers NEW_PASSWORD_REQUIRED (first sign-in of an administrator-created user). */
  async setNewPassword(challenge, newPassword) {
    const answer = await this.call("RespondToAuthChallenge", {
      ChallengeName: "NEW_PASSWORD_REQUIRED",
      ClientId: this.clientId,
      Session: challenge.session,
      ChallengeResponses: { USERNAME: challenge.username, NEW_PASSWORD: newPassword },
    });
    this.store(answer.AuthenticationResult, challenge.username);
    return { signedIn: true };
  }

  store(result, username) {
    const previous = this.load();
    const session = {
      username,
      idToken: result.IdToken,
      // A refresh answer carries no new refresh token: keep the one we have.
      refreshToken: result.RefreshToken ?? previous?.refreshToken ?? null,
      expiresAt: jwtClaims(result.IdToken).exp,
    };
    this.storage.setItem(STORAGE_KEY, JSON.stringify(session));
  }

  load() {
    try {
      return JSON.parse(this.storage.getItem(STORAGE_KEY) ?? "null");
    } catch {
      return null;
    }
  }

  /** Who is signed in, or null. */
  get username() {
    return this.load()?.username ?? null;
  }

  /**
   * A valid ID token, renewed when it is about to expire; null when signed out (or when the
   * refresh token no longer works: the user must sign in again).
   */
  async idToken(nowS = Date.now() / 1000) {
    const session = this.load();
    if (!session?.idToken) return null;
    if (session.expiresAt - RENEW_BEFORE_S > nowS) return session.idToken;
    if (!session.refreshToken) {
      this.signOut();
      return null;
    }
    try {
      const answer = await this.call("InitiateAuth", {
        AuthFlow: "REFRESH_TOKEN_AUTH",
        ClientId: this.clientId,
        AuthParameters: { REFRESH_TOKEN: session.refreshToken },
      });
      this.store(answer.AuthenticationResult, session.username);
      return this.load().idToken;
    } catch (err) {
      if (err.code === "network") return session.idToken; // try again on the next poll
      this.signOut();
      return null;
    }
  }

  signOut() {
    this.storage.removeItem(STORAGE_KEY);
  }
}
