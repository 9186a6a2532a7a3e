// A real OpenID Provider for kubetray's end-to-end tests: panva's oidc-provider, unchanged, configured
// for the flows kubetray drives through MSAL. Test-only; nothing here is fit for production.
//
//   node tests/oidc/server.mjs --cert CERT.pem --key KEY.pem [--port 0]
//
// Environment: OIDC_TOKEN_TTL (seconds, access and ID tokens; default 3600).
// Prints one JSON line {issuer, jwks_uri, ...} once listening, then one JSON line per token-endpoint
// event ({"event": "grant.success", "grant_type": ..., "issued": [tokens]}): the tokens only so the test
// process (the one reader of this pipe) can check none leaked; it writes them nowhere. Revocations are
// reported as {"event": "revocation.success", "token_kind": ...} (no token). Exits on SIGTERM.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

const { values: argv } = parseArgs({
  options: {
    cert: { type: 'string', default: process.env.OIDC_TLS_CERT },
    key: { type: 'string', default: process.env.OIDC_TLS_KEY },
    port: { type: 'string', default: process.env.OIDC_PORT || '0' },
  },
});
if (!argv.cert || !argv.key) {
  process.stderr.write('usage: server.mjs --cert CERT.pem --key KEY.pem [--port N]\n');
  process.exit(2);
}

const MOUNT = '/oidc';
const TTL = Number(process.env.OIDC_TOKEN_TTL || 3600);
const NATIVE_CLIENT = 'kubetray-native';
const CONFIDENTIAL_CLIENT = 'kubetray-confidential';
const CONFIDENTIAL_SECRET = process.env.OIDC_CLIENT_SECRET || 'kubetray-test-client-secret';
const TEST_USER = 'alice@example.test';
const TEST_PASSWORD = process.env.OIDC_TEST_PASSWORD || 'kubetray-test-password';
const RESOURCE = 'https://kubernetes.test/';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-1', use: 'sig', alg: 'RS256' };

async function findAccount(_ctx, id) {
  // devInteractions accept any login; whoever signs in is this one person, keyed by what they typed.
  return {
    accountId: id,
    async claims() {
      return { sub: id, email: id.includes('@') ? id : TEST_USER, email_verified: true, name: 'Test User' };
    },
  };
}

const server = createServer({ cert: readFileSync(argv.cert), key: readFileSync(argv.key) });
server.listen(Number(argv.port), '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `https://127.0.0.1:${port}${MOUNT}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: NATIVE_CLIENT,
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        redirect_uris: ['http://localhost'], // native loopback: any port matches
        response_types: ['code'],
        grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
      },
      {
        client_id: CONFIDENTIAL_CLIENT,
        client_secret: CONFIDENTIAL_SECRET,
        application_type: 'native',
        redirect_uris: ['http://localhost'],
        response_types: ['code'],
        grant_types: ['authorization_code', 'refresh_token', 'client_credentials', 'password'],
      },
    ],
    findAccount,
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    scopes: ['openid', 'offline_access', 'email', 'profile', 'api'],
    cookies: { keys: [randomBytes(32).toString('hex')] },
    jwks: { keys: [signingKey] },
    ttl: {
      AccessToken: TTL,
      IdToken: TTL,
      ClientCredentials: TTL,
      DeviceCode: 600,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
      RefreshToken: 3600,
    },
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // MSAL never sends `resource`: without a default the access tokens would be opaque.
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({ scope: 'api', audience: RESOURCE, accessTokenFormat: 'jwt', accessTokenTTL: TTL }),
      },
    },
  });

  // TEST-ONLY EXTENSION: oidc-provider has no Resource Owner Password grant (OAuth 2.1 drops it).
  // This one knows a single fixed user and exists only so kubetray's --grant-type password is tested
  // against the same provider as every other flow.
  provider.registerGrantType('password', async (ctx) => {
    const { client, params } = ctx.oidc;
    if (params.username !== TEST_USER || params.password !== TEST_PASSWORD) {
      throw new errors.InvalidGrant('wrong username or password');
    }
    const asked = new Set(String(params.scope || '').split(' '));
    const scope = ['openid', 'offline_access', 'email', 'profile'].filter((s) => asked.has(s)).join(' ');
    const account = await findAccount(ctx, TEST_USER);
    ctx.oidc.entity('Account', account);
    const grant = new provider.Grant({ accountId: TEST_USER, clientId: client.clientId });
    grant.addOIDCScope(scope);
    grant.addResourceScope(RESOURCE, 'api');
    const grantId = await grant.save();
    ctx.oidc.entity('Grant', grant);
    const at = new provider.AccessToken({ accountId: TEST_USER, client, grantId, gty: 'password', scope });
    at.resourceServer = new provider.ResourceServer(RESOURCE, {
      scope: 'api', audience: RESOURCE, accessTokenFormat: 'jwt', accessTokenTTL: TTL,
    });
    const accessToken = await at.save();
    let refreshToken;
    if (asked.has('offline_access')) {
      const rt = new provider.RefreshToken({
        accountId: TEST_USER, client, grantId, gty: 'password', scope, rotations: 0, resource: RESOURCE,
      });
      refreshToken = await rt.save();
    }
    const idToken = new provider.IdToken({ ...(await account.claims()) }, { ctx });
    idToken.scope = scope;
    ctx.body = {
      access_token: accessToken,
      expires_in: at.expiration,
      id_token: await idToken.issue({ use: 'idtoken' }),
      refresh_token: refreshToken,
      scope,
      token_type: 'Bearer',
    };
  }, ['username', 'password', 'scope']);

  const say = (doc) => process.stdout.write(`${JSON.stringify(doc)}\n`);
  // `issued` carries the tokens of the response, on this pipe only, for the test run's leak check.
  provider.on('grant.success', (ctx) => say({
    event: 'grant.success', grant_type: ctx.oidc.params.grant_type,
    issued: ['access_token', 'id_token', 'refresh_token'].map((k) => ctx.body?.[k]).filter(Boolean),
  }));
  provider.on('grant.error', (ctx, err) => say({
    event: 'grant.error', grant_type: ctx.oidc.params?.grant_type, error: err.error || String(err.message),
  }));
  // Revocation (RFC 7009) at logout. oidc-provider 9 emits only `revocation.error`, so successes are
  // reported from here: `revocation.success` with the kind of token the provider found and destroyed
  // (RFC 7009 answers 200 for unknown tokens too, so the kind is what tells a real revocation).
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route === 'revocation' && ctx.status === 200) {
      const { RefreshToken, AccessToken } = ctx.oidc.entities;
      say({ event: 'revocation.success', token_kind: RefreshToken ? 'refresh_token' : AccessToken ? 'access_token' : 'unknown' });
    }
  });
  provider.on('revocation.error', (_ctx, err) => say({ event: 'revocation.error', error: err.error || String(err.message) }));
  provider.on('server_error', (_ctx, err) => process.stderr.write(`server_error: ${err.stack}\n`));

  const callback = provider.callback();
  server.on('request', (req, res) => {
    if (req.url === MOUNT || req.url.startsWith(`${MOUNT}/`) || req.url.startsWith(`${MOUNT}?`)) {
      // Mounted under a path, as behind a router: the provider derives its URLs from originalUrl.
      req.originalUrl = req.url;
      req.url = req.url.slice(MOUNT.length) || '/';
      callback(req, res);
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"error":"not_found"}');
  });
  say({
    issuer,
    jwks_uri: `${issuer}/jwks`,
    native_client_id: NATIVE_CLIENT,
    confidential_client_id: CONFIDENTIAL_CLIENT,
    resource: RESOURCE,
    test_user: TEST_USER,
    pid: process.pid,
  });
});

process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  process.exit(0);
});
