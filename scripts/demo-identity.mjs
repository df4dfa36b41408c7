// Walks the identity path against a running gateway, printing each request and
// answer: register → first device (keys + certificate made here, as a client
// would) → login → list devices → refresh → revoke → the revoked token refused.
//   BIL_URL=http://localhost:8080 node scripts/demo-identity.mjs [username]
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';

const base = (process.env.BIL_URL ?? 'http://localhost:8080').replace(/\/$/, '');
const username = process.argv[2] ?? `demo_${randomBytes(3).toString('hex')}`;
const password = 'correct horse battery staple';
const quiet = process.env.DEMO_QUIET === '1';

async function call(method, path, body, token) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  const json = text ? JSON.parse(text) : null;
  if (!quiet) {
    console.log(`> ${method} ${path}`);
    console.log(`< ${res.status} ${JSON.stringify(json, (k, v) => (typeof v === 'string' && v.length > 60 ? `${v.slice(0, 24)}…` : v))}`);
  }
  return { status: res.status, json };
}

function expect(cond, what) {
  if (!cond) {
    console.error(`demo: FAILED: ${what}`);
    process.exit(1);
  }
}

const canonical = (o) => `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${JSON.stringify(o[k])}`).join(',')}}`;
const rawEd25519 = (pub) => pub.export({ format: 'der', type: 'spki' }).subarray(12).toString('base64url');

const reg = await call('POST', '/v1/auth/register', { username, password });
expect(reg.status === 201, 'register answers 201');
const userId = reg.json.user.user_id;

const identity = generateKeyPairSync('ed25519');
const signing = generateKeyPairSync('ed25519');
const encryption = generateKeyPairSync('rsa', { modulusLength: 3072 });
const device = {
  encryption_key: encryption.publicKey.export({ format: 'der', type: 'spki' }).toString('base64url'),
  signing_key: rawEd25519(signing.publicKey),
  identity_key: rawEd25519(identity.publicKey),
  certificate_issued_at: Date.now(),
};
const payload = canonical({
  type: 'bil.device-certificate.v1',
  user_id: userId,
  identity_key: device.identity_key,
  encryption_key: device.encryption_key,
  signing_key: device.signing_key,
  issued_at: device.certificate_issued_at,
});
device.certificate = sign(null, Buffer.from(payload), identity.privateKey).toString('base64url');

const dev = await call('POST', '/v1/auth/devices', { username, password, device_name: 'demo laptop', ...device });
expect(dev.status === 201, 'device registration answers 201');
const deviceId = dev.json.device.device_id;

const login = await call('POST', '/v1/auth/login', { username, password, device_id: deviceId });
expect(login.status === 200, 'login answers 200');
const token = login.json.tokens.access_token;

const list = await call('GET', `/v1/users/${userId}/devices`, undefined, token);
expect(list.status === 200 && list.json.devices.some((d) => d.device_id === deviceId), 'the device is in the key directory');

const again = await call('POST', '/v1/auth/register', { username: username.toUpperCase(), password });
expect(again.status === 409, 'the same username in another case answers 409');

const refreshed = await call('POST', '/v1/auth/refresh', { refresh_token: login.json.tokens.refresh_token });
expect(refreshed.status === 200, 'refresh answers 200');

const revoke = await call('DELETE', `/v1/devices/${deviceId}`, undefined, refreshed.json.tokens.access_token);
expect(revoke.status === 200, 'revoking the device answers 200');
const after = await call('GET', '/v1/me', undefined, token);
expect(after.status === 401, "a revoked device's token is refused at once");

console.log(`demo: OK (user ${username})`);
