// A real OpenID provider for the refresh tests: `oidc-provider` on loopback with one confidential
// client, 5-second access tokens and rotating refresh tokens (a reused one revokes the grant).
//
//   node provider.mjs PORT
//
// Prints `ready` once it listens. Besides the provider's own endpoints it answers, for the tests
// only:
//   POST /test/grant   → a refresh token of a fresh grant (stands in for the interactive log-in)
//   GET  /test/stats   → how many token requests it served, by grant type and outcome
import http from 'node:http';
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;
const stats = { requests: 0, success: {}, error: {} };

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'workflow-engine',
    client_secret: 'client-secret-for-tests-only-0123456789',
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    redirect_uris: ['http://127.0.0.1/callback'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'openid offline_access api',
  }],
  scopes: ['openid', 'offline_access', 'api'],
  features: { clientCredentials: { enabled: true }, devInteractions: { enabled: false } },
  rotateRefreshToken: true,
  ttl: { AccessToken: 5, ClientCredentials: 5, RefreshToken: 3600, Grant: 3600 },
  findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
});
provider.proxy = false;

provider.on('grant.success', (ctx) => {
  const type = ctx.oidc.params.grant_type;
  stats.success[type] = (stats.success[type] ?? 0) + 1;
});
provider.on('grant.error', (ctx, error) => {
  const type = ctx.oidc?.params?.grant_type ?? 'unknown';
  const key = `${type}:${error.error}`;
  stats.error[key] = (stats.error[key] ?? 0) + 1;
});

async function mintRefreshToken() {
  const client = await provider.Client.find('workflow-engine');
  const grant = new provider.Grant({ accountId: 'operator', clientId: client.clientId });
  grant.addOIDCScope('openid offline_access');
  const grantId = await grant.save();
  const token = new provider.RefreshToken({
    accountId: 'operator',
    client,
    grantId,
    gty: 'authorization_code',
    scope: 'openid offline_access',
    authTime: Math.floor(Date.now() / 1000),
  });
  return token.save();
}

const callback = provider.callback();
const server = http.createServer(async (req, res) => {
  if (req.url === '/token' && req.method === 'POST') stats.requests += 1;
  if (req.url === '/test/grant' && req.method === 'POST') {
    const refresh_token = await mintRefreshToken();
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ refresh_token }));
    return;
  }
  if (req.url === '/test/stats') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(stats));
    return;
  }
  callback(req, res);
});
server.listen(port, '127.0.0.1', () => console.log('ready'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
