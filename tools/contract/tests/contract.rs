//! The committed openapi.yaml is the contract; these tests keep it honest.

#[test]
fn committed_openapi_yaml_matches_the_api_traits() {
    let generated = contract::generate().expect("the contract generates and passes review");
    let committed = std::fs::read_to_string(contract::committed_path()).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi.yaml is stale: run `{}` and review its diff",
        contract::GENERATE_COMMAND
    );
}

#[test]
fn every_operation_has_one_tag_a_summary_and_a_unique_id() {
    let spec = contract::merged().unwrap();
    assert_eq!(contract::review(&spec), Vec::<String>::new());
    let operations: Vec<_> = spec
        .operations()
        .map(|(path, method, op)| (method.to_uppercase(), path.to_string(), op.tags[0].clone()))
        .collect();
    // The original system's ten operations and the internal ones added since, with the tag
    // saying which service serves each.
    let expected = [
        ("POST", "/orders", "orders"),
        ("GET", "/orders", "orders"),
        ("GET", "/orders/{orderId}", "orders"),
        ("PUT", "/orders/{orderId}", "orders"),
        ("DELETE", "/orders/{orderId}", "orders"),
        ("POST", "/internal/payment-callback", "internal"),
        ("POST", "/internal/orders/{orderId}/payment", "internal"),
        (
            "POST",
            "/internal/orders/{orderId}/released-payments",
            "internal",
        ),
        ("GET", "/internal/orders/{orderId}", "internal"),
        ("POST", "/payments", "payments"),
        ("GET", "/payments/{paymentId}", "payments"),
        ("PUT", "/payments/success/{paymentId}", "payments"),
        ("PUT", "/payments/failed/{paymentId}", "payments"),
    ];
    for (method, path, tag) in expected {
        assert!(
            operations.contains(&(method.to_string(), path.to_string(), tag.to_string())),
            "{method} {path} [{tag}] missing from {operations:?}"
        );
    }
    assert_eq!(operations.len(), expected.len());
}

#[test]
fn review_reports_a_missing_summary_and_a_second_tag() {
    let mut spec = contract::merged().unwrap();
    let Some(openapiv3::ReferenceOr::Item(item)) = spec.paths.paths.get_mut("/orders") else {
        panic!("/orders is missing");
    };
    let op = item.post.as_mut().unwrap();
    op.summary = None;
    op.tags.push("payments".to_string());
    let problems = contract::review(&spec);
    assert!(
        problems.iter().any(|p| p == "POST /orders: has no summary"),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("POST /orders: needs exactly one declared tag"))
    );
}

fn yaml(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap()
}

fn version(contract: &serde_json::Value) -> semver::Version {
    contract["info"]["version"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// The breaking-change gate: the contract keeps every promise of the
/// released one, says by its version that it changed, and the changelog
/// says how.
#[test]
fn the_contract_keeps_every_promise_of_the_released_one() {
    let released = yaml(&contract::released_path());
    let current = yaml(&contract::committed_path());
    let problems = contract::compat::breaking_changes(&released, &current);
    let (was, is) = (version(&released), version(&current));
    let changelog =
        std::fs::read_to_string(contract::committed_path().with_file_name("CHANGELOG.md")).unwrap();
    // A break is allowed only as a new major version whose changelog
    // section says it breaks clients.
    if !problems.is_empty() {
        let section = changelog
            .split(&format!("## {is}"))
            .nth(1)
            .map(|rest| rest.split("\n## ").next().unwrap_or(""))
            .unwrap_or("");
        assert!(
            is.major > was.major && section.contains("Breaking"),
            "openapi.yaml breaks clients of the released contract {was}; a break needs a new \
             major version whose CHANGELOG section says \"Breaking\":\n  {}",
            problems.join("\n  ")
        );
    }
    let mut unversioned = current.clone();
    unversioned["info"]["version"] = released["info"]["version"].clone();
    if unversioned != released {
        assert!(
            is > was,
            "the contract changed since {was} but info.version is {is}: raise CONTRACT_VERSION"
        );
    }
    assert!(
        changelog.contains(&format!("## {is}")),
        "CHANGELOG.md has no section for {is}"
    );
}

/// The gate on the real contract, broken on purpose: it names each break.
#[test]
fn the_gate_names_each_break_of_the_real_contract() {
    let current = yaml(&contract::committed_path());
    let mut broken = current.clone();
    let list = &mut broken["paths"]["/orders"]["get"]["parameters"];
    for parameter in list.as_array_mut().unwrap() {
        if parameter["name"] == "limit" {
            parameter["required"] = true.into();
        }
    }
    let statuses = broken["components"]["schemas"]["OrderStatus"]["oneOf"]
        .as_array_mut()
        .unwrap();
    statuses.retain(|alternative| alternative["enum"][0] != "failed");
    broken["paths"]["/orders"]["post"]["responses"]["201"] =
        broken["paths"]["/orders"]["post"]["responses"]["200"].take();
    broken["paths"]["/orders"]["post"]["responses"]
        .as_object_mut()
        .unwrap()
        .remove("200");
    broken["paths"]["/orders/{orderId}"]["get"]["security"] =
        serde_json::json!([{"bearer": ["admin"]}]);
    let mut open = current.clone();
    open["paths"]["/orders/{orderId}"]["get"]
        .as_object_mut()
        .unwrap()
        .remove("security");
    let problems = contract::compat::breaking_changes(&open, &broken);
    eprintln!("{}", problems.join("\n"));
    for expected in [
        "GET /orders: query parameter limit became required",
        "enum value \"failed\" was removed",
        "POST /orders: success status changed",
        "GET /orders/{orderId}: now requires a credential",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{expected:?} not among:\n{}",
            problems.join("\n")
        );
    }
}
