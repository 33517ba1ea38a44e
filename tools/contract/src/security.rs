//! Who may call what, in the contract: the bearer-token scheme, each public
//! operation's scopes (from the API crates' `ACCESS` tables, which the
//! handlers enforce), and the 401 and 403 answers with their challenge.

use anyhow::{Context, bail};
use api_common::{Access, Scope};
use openapiv3::{OpenAPI, ReferenceOr, StatusCode};
use serde_json::json;

/// The scheme's name in `components.securitySchemes`.
pub const SCHEME: &str = "bearer";

/// Adds the scheme and, to each operation with an access rule, its
/// security requirement and its 401 and 403 answers. Internal operations
/// (signed, no rule) get none.
pub fn secure(spec: &mut OpenAPI) -> anyhow::Result<()> {
    let rules: Vec<Access> = order_api::ACCESS
        .iter()
        .chain(payment_api::ACCESS)
        .copied()
        .collect();
    let components = spec.components.get_or_insert_with(Default::default);
    let scopes: Vec<String> = Scope::ALL
        .iter()
        .map(|s| format!("- `{}`: {}", s.as_str(), s.description()))
        .collect();
    components.security_schemes.insert(
        SCHEME.to_string(),
        serde_json::from_value(json!({
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": format!(
                "An OAuth 2.0 access token (RFC 9068 JWT) from the operator's identity \
                 provider, sent as `Authorization: Bearer <token>`. Its `iss` and `aud` must \
                 be the ones the services are configured with; its `sub` is the caller, who \
                 owns what it creates; its space-separated `scope` claim grants:\n\n{}\n\n\
                 Each operation lists the scopes that let a token call it (any one is \
                 enough). Services started with AUTH_DISABLED=true ask for no token.",
                scopes.join("\n")
            ),
        }))?,
    );
    for (name, status, what) in [
        (
            "Unauthorized",
            "401",
            "No bearer token (`UNAUTHORIZED`), or one that is not valid (`INVALID_TOKEN`: \
             malformed, expired, not yet valid, from another issuer or for another audience, \
             signed by an unknown key or with an algorithm not accepted). Nothing was done.",
        ),
        (
            "Forbidden",
            "403",
            "A valid token without a scope this operation needs (`INSUFFICIENT_SCOPE`). \
             Nothing was done.",
        ),
    ] {
        components.responses.insert(
            name.to_string(),
            serde_json::from_value(json!({
                "description": what,
                "headers": {
                    "WWW-Authenticate": {
                        "description": format!(
                            "The challenge (RFC 6750 §3): `Bearer realm=\"orders-and-payments\"`{}.",
                            if status == "401" {
                                ", with `error=\"invalid_token\"` and an `error_description` for a token that was refused"
                            } else {
                                ", `error=\"insufficient_scope\"` and the `scope` needed"
                            }
                        ),
                        "schema": { "type": "string" },
                    }
                },
                "content": {
                    "application/json": {
                        "schema": { "$ref": "#/components/schemas/ApiError" }
                    }
                }
            }))
            .with_context(|| format!("response {name}"))?,
        );
    }
    let mut secured = Vec::new();
    for (_, item) in spec.paths.paths.iter_mut() {
        let ReferenceOr::Item(item) = item else {
            continue;
        };
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            let Some(id) = operation.operation_id.clone() else {
                continue;
            };
            let Some(rule) = rules.iter().find(|r| r.operation == id) else {
                continue;
            };
            operation.security = Some(
                rule.any_of
                    .iter()
                    .map(|scope| {
                        [(SCHEME.to_string(), vec![scope.as_str().to_string()])]
                            .into_iter()
                            .collect()
                    })
                    .collect(),
            );
            for (status, name) in [(401, "Unauthorized"), (403, "Forbidden")] {
                operation.responses.responses.insert(
                    StatusCode::Code(status),
                    ReferenceOr::ref_(&format!("#/components/responses/{name}")),
                );
            }
            secured.push(id);
        }
    }
    for rule in &rules {
        // settle_payment is the unpublished route behind the two settlement operations.
        if rule.operation != "settle_payment" && !secured.contains(&rule.operation.to_string()) {
            bail!(
                "access rule for {}, which the contract does not have",
                rule.operation
            );
        }
    }
    Ok(())
}
