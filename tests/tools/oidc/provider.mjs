// A real OpenID Connect provider for the console's sign-in tests (panva's oidc-provider, the
// certified implementation): authorization code + PKCE, signed ID tokens, its own dev login form.
// Usage: node provider.mjs PORT CONFIG_JSON_FILE
//   CONFIG: {"clients": [oidc-provider client metadata], "accounts": {"<login>": {claims...}}}
import { readFileSync } from "node:fs";
import Provider from "oidc-provider";

const [port, configFile] = process.argv.slice(2);
const { clients, accounts } = JSON.parse(readFileSync(configFile, "utf8"));
const extraClaims = [...new Set(Object.values(accounts).flatMap((claims) => Object.keys(claims)))];

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients,
  pkce: { required: () => true },
  claims: { openid: ["sub", ...extraClaims] },
  conformIdTokenClaims: false, // the claims ride in the ID token, as Entra ID's groups and roles do
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ["beacon-test-provider-cookie-key"] },
  async findAccount(_ctx, id) {
    if (!(id in accounts)) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...accounts[id] }; } };
  },
});
provider.listen(Number(port), "127.0.0.1", () => console.log(`oidc-provider listening on ${port}`));
