// A real OpenID Provider for the bastion's end-to-end tests: panva's
// certified oidc-provider with the device authorization grant (RFC 8628)
// enabled, a public client `bastion`, a static set of accounts, and minimal
// interactions (login, consent) made of plain HTML forms, so that a plain
// HTTP client with a cookie jar, or a headless browser, can act as a person.
//
// Environment:
//   PORT           port on 127.0.0.1 (default 9400)
//   ISSUER         issuer URL (default http://127.0.0.1:$PORT)
//   DEVICE_TTL     device code lifetime in seconds (default 600)
//   ACCOUNTS_JSON  {"alice":{"email":"..","name":"..","groups":[..]},..}
//                  (default: alice, bob, mallory)
//   LOGIN_ACR      the acr of every login (default urn:bastion:pwd); ID
//                  tokens carry acr, amr and auth_time
//   LOGIN_AMR      its amr, comma-separated (default pwd)
//
// Pages (all without JavaScript):
//   GET  /device                    form#op.deviceInputForm: xsrf, user_code
//   POST /device                    form#op.deviceConfirmForm: xsrf, user_code,
//                                   confirm=yes; add abort=yes to deny here
//   GET  /interaction/:uid          login: form#login (login, password), or
//                                   consent: form#approve and form#deny
//   POST /interaction/:uid/login    any non-empty password; unknown logins
//                                   get the login form again with an error
//   POST /interaction/:uid/confirm  grants the requested scopes and claims
//   POST /interaction/:uid/abort    access_denied for the device code
import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider, { errors } from 'oidc-provider';

const PORT = Number(process.env.PORT || 9400);
const ISSUER = process.env.ISSUER || `http://127.0.0.1:${PORT}`;
const DEVICE_TTL = Number(process.env.DEVICE_TTL || 600);

const DEFAULT_ACCOUNTS = {
  alice: { email: 'alice@example.com', name: 'Alice', groups: ['devs', 'ops'] },
  bob: { email: 'bob@example.com', name: 'Bob', groups: ['devs'] },
  mallory: { email: 'mallory@evil.test', name: 'Mallory', groups: [] },
};
const ACCOUNTS = process.env.ACCOUNTS_JSON ? JSON.parse(process.env.ACCOUNTS_JSON) : DEFAULT_ACCOUNTS;
const LOGIN_ACR = process.env.LOGIN_ACR || 'urn:bastion:pwd';
const LOGIN_AMR = (process.env.LOGIN_AMR || 'pwd').split(',').filter(Boolean);

const log = (...args) => console.log(new Date().toISOString(), ...args);

function findAccount(_ctx, id) {
  const a = Object.hasOwn(ACCOUNTS, id) ? ACCOUNTS[id] : undefined;
  if (!a) return undefined;
  return {
    accountId: id,
    async claims() {
      return {
        sub: id,
        email: a.email,
        email_verified: a.email_verified ?? true,
        name: a.name ?? id,
        groups: a.groups ?? [],
      };
    },
  };
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));

function page(title, body) {
  return `<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body>
<h1>${esc(title)}</h1>
${body}
</body>
</html>`;
}

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: randomBytes(8).toString('hex') };

const configuration = {
  clients: [{
    client_id: 'bastion',
    client_name: 'SSH bastion',
    token_endpoint_auth_method: 'none',
    grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
    response_types: [],
    redirect_uris: [],
  }],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  findAccount,
  // Without acr values the provider drops the acr claim.
  acrValues: [...new Set(['urn:bastion:pwd', 'urn:bastion:mfa', LOGIN_ACR])],
  scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
  claims: {
    // amr goes into every ID token (acr and auth_time when asked for).
    openid: ['sub', 'amr'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  conformIdTokenClaims: false,
  ttl: {
    DeviceCode: DEVICE_TTL,
    AccessToken: 3600,
    IdToken: 3600,
    Interaction: 3600,
    Session: 86400,
    Grant: 86400,
    RefreshToken: 86400,
  },
  interactions: {
    url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  features: {
    devInteractions: { enabled: false },
    deviceFlow: {
      enabled: true,
      async userCodeInputSource(ctx, form, _out, err) {
        let msg = '<p>Enter the code displayed on your device</p>';
        if (err && (err.userCode || err.name === 'NoCodeError')) {
          msg = '<p class="error">The code you entered is incorrect. Try again</p>';
        } else if (err && err.name === 'AbortedError') {
          msg = '<p class="error">The Sign-in request was interrupted</p>';
        } else if (err) {
          msg = `<p class="error">There was an error processing your request: ${esc(err.message || err.name)}</p>`;
        }
        ctx.body = page('Sign-in', `${msg}
${form}
<button type="submit" form="op.deviceInputForm">Continue</button>`);
      },
      async userCodeConfirmSource(ctx, form, client, _deviceInfo, userCode) {
        const name = client.clientName || client.clientId;
        ctx.body = page('Confirm Device', `<p><strong>${esc(name)}</strong> is asking for access.
The following code should be displayed on your device: <code id="user_code">${esc(userCode)}</code></p>
${form}
<button type="submit" form="op.deviceConfirmForm">Continue</button>
<button type="submit" form="op.deviceConfirmForm" name="abort" value="yes">Abort</button>`);
      },
      async successSource(ctx) {
        ctx.body = page('Sign-in Success', '<p id="success">Your sign-in was successful, you can now close this page.</p>');
      },
    },
    revocation: { enabled: true },
    introspection: { enabled: true },
  },
  renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Error', `<p class="error" id="error">${esc(out.error)}: ${esc(out.error_description || '')}</p>`);
  },
};

const provider = new Provider(ISSUER, configuration);
provider.proxy = false;

for (const ev of ['server_error', 'grant.error', 'device_authorization.error', 'authorization.error', 'code_verification.error', 'device_resume.error']) {
  provider.on(ev, (_ctx, err) => {
    if (err?.error !== 'authorization_pending') log(ev, err?.name, err?.message, err?.error_description || '');
  });
}
provider.on('device_authorization.success', (_ctx, body) => log('device_authorization.success user_code', body.user_code));
provider.on('authorization.success', (ctx) => log('authorization.success', ctx.oidc.session?.accountId || ''));
provider.on('grant.success', (ctx) => log('grant.success', ctx.oidc.params?.grant_type || ''));
provider.on('interaction.started', (_ctx, prompt) => log('interaction.started', prompt.name));

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > 65536) { reject(new Error('body too large')); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

function send(res, status, html) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

function loginPage(uid, error, loginHint) {
  return page('Sign-in', `${error ? `<p class="error">${esc(error)}</p>` : ''}
<form id="login" method="post" action="/interaction/${esc(uid)}/login">
<input type="text" name="login" placeholder="login" value="${esc(loginHint || '')}" autofocus>
<input type="password" name="password" placeholder="password">
<button type="submit">Sign-in</button>
</form>
<form id="deny" method="post" action="/interaction/${esc(uid)}/abort">
<button type="submit">Cancel</button>
</form>`);
}

function consentPage(uid, client, details, accountId) {
  const scopes = (details.missingOIDCScope || []).filter((s) => s !== 'openid');
  const claims = (details.missingOIDCClaims || []).filter((c) => !['sub', 'sid', 'auth_time', 'acr', 'amr', 'iss'].includes(c));
  return page('Authorize', `<p>Signed in as <strong id="account">${esc(accountId)}</strong>.</p>
<p><strong>${esc(client?.clientName || client?.clientId || '')}</strong> asks for:</p>
<ul>${scopes.map((s) => `<li>scope ${esc(s)}</li>`).join('')}${claims.map((c) => `<li>claim ${esc(c)}</li>`).join('')}</ul>
<form id="approve" method="post" action="/interaction/${esc(uid)}/confirm">
<button type="submit">Allow</button>
</form>
<form id="deny" method="post" action="/interaction/${esc(uid)}/abort">
<button type="submit">Deny</button>
</form>`);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    send(res, 400, page('Error', '<p class="error" id="error">interaction mismatch</p>'));
    return;
  }
  const { prompt, params, session } = details;

  if (req.method === 'GET' && !action) {
    if (prompt.name === 'login') {
      send(res, 200, loginPage(uid, '', params.login_hint));
    } else if (prompt.name === 'consent') {
      const client = await provider.Client.find(params.client_id);
      send(res, 200, consentPage(uid, client, prompt.details, session?.accountId));
    } else {
      send(res, 501, page('Error', `<p class="error" id="error">prompt ${esc(prompt.name)} not implemented</p>`));
    }
    return;
  }
  if (req.method !== 'POST') {
    send(res, 405, page('Error', '<p class="error" id="error">method not allowed</p>'));
    return;
  }
  const body = await readBody(req);

  if (action === 'abort') {
    log('interaction.abort', uid, prompt.name, session?.accountId || '');
    await provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
    return;
  }

  if (action === 'login') {
    if (prompt.name !== 'login') {
      send(res, 400, page('Error', '<p class="error" id="error">not at the login step</p>'));
      return;
    }
    const login = (body.get('login') || '').trim();
    if (!findAccount(undefined, login) || !body.get('password')) {
      log('interaction.login.fail', uid, login);
      send(res, 200, loginPage(uid, 'Unknown login or empty password', login));
      return;
    }
    log('interaction.login', uid, login);
    await provider.interactionFinished(req, res, { login: { accountId: login, acr: LOGIN_ACR, amr: LOGIN_AMR } }, { mergeWithLastSubmission: false });
    return;
  }

  if (action === 'confirm') {
    if (prompt.name !== 'consent') {
      send(res, 400, page('Error', '<p class="error" id="error">not at the consent step</p>'));
      return;
    }
    const d = prompt.details;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    if (d.missingResourceScopes) {
      for (const [indicator, scope] of Object.entries(d.missingResourceScopes)) {
        grant.addResourceScope(indicator, scope.join(' '));
      }
    }
    const grantId = await grant.save();
    log('interaction.consent', uid, session?.accountId || '');
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }
  send(res, 404, page('Error', '<p class="error" id="error">not found</p>'));
}

const callback = provider.callback();
const interactionRe = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|confirm|abort))?\/?$/;

const server = createServer(async (req, res) => {
  const path = new URL(req.url, ISSUER).pathname;
  const m = interactionRe.exec(path);
  if (!m) {
    callback(req, res);
    return;
  }
  try {
    await interaction(req, res, m[1], m[2]);
  } catch (err) {
    log('interaction.error', err?.name, err?.message);
    if (!res.headersSent) {
      const status = err instanceof errors.SessionNotFound ? 400 : 500;
      send(res, status, page('Error', `<p class="error" id="error">${esc(err?.message || 'error')}</p>`));
    }
  }
});

server.listen(PORT, '127.0.0.1', () => {
  console.log(`oidc listening ${ISSUER}`);
});

function shutdown(sig) {
  log(`oidc stopping (${sig})`);
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
