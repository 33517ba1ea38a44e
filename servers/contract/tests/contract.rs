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
    // The original system's ten operations, with the tag saying which service serves each.
    let expected = [
        ("POST", "/orders", "orders"),
        ("GET", "/orders", "orders"),
        ("GET", "/orders/{orderId}", "orders"),
        ("PUT", "/orders/{orderId}", "orders"),
        ("DELETE", "/orders/{orderId}", "orders"),
        ("POST", "/internal/payment-callback", "internal"),
        ("POST", "/internal/orders/{orderId}/payment", "internal"),
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
