// A real OpenID provider for the end-to-end authentication test: the
// certified `oidc-provider` package, issuing RFC 9068 JWT access tokens for
// the client credentials grant.
//
//   node provider.mjs new-key KID      prints a new RS256 private JWK
//   node provider.mjs serve            serves the provider, configured by:
//     PORT      where to listen on 127.0.0.1; the issuer is http://127.0.0.1:PORT
//     KEYS      a file holding a JSON array of private JWKs: the first signs
//     AUDIENCE  the resource (audience) tokens are for
//     CLIENTS   a JSON object: client id -> [secret, space-separated scopes]
import { generateKeyPairSync, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import Provider from "oidc-provider";

const [, , command, argument] = process.argv;

if (command === "new-key") {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = privateKey.export({ format: "jwk" });
  console.log(JSON.stringify({ ...jwk, kid: argument ?? randomUUID(), alg: "RS256", use: "sig" }));
} else if (command === "serve") {
  const port = Number(process.env.PORT);
  const issuer = `http://127.0.0.1:${port}`;
  const audience = process.env.AUDIENCE;
  const keys = JSON.parse(readFileSync(process.env.KEYS, "utf8"));
  const clients = Object.entries(JSON.parse(process.env.CLIENTS)).map(([id, [secret, scope]]) => ({
    client_id: id,
    client_secret: secret,
    grant_types: ["client_credentials"],
    redirect_uris: [],
    response_types: [],
    scope,
  }));
  const scopes = [...new Set(clients.flatMap((client) => client.scope.split(" ")))];
  const provider = new Provider(issuer, {
    clients,
    jwks: { keys },
    scopes,
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => audience,
        useGrantedResource: () => true,
        getResourceServerInfo: (_context, resource) => {
          if (resource !== audience) throw new Error(`unknown resource ${resource}`);
          return {
            scope: scopes.join(" "),
            audience,
            accessTokenFormat: "jwt",
            accessTokenTTL: 600,
            jwt: { sign: { alg: "RS256" } },
          };
        },
      },
    },
  });
  provider.listen(port, "127.0.0.1", () => console.log(`listening on ${issuer}`));
} else {
  console.error("usage: provider.mjs new-key KID | serve");
  process.exit(2);
}
