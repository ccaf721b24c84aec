//! Azure Key Vault and GCP Secret Manager stores without a server: they open by every spelling
//! of their kind without I/O, and a call to a closed local port fails as `Unavailable` (a real
//! connection refusal, retried within the stores' bounded budget) instead of hanging.
//!
//! No emulator for either service installs from the registries this project uses (see
//! scripts/peers: `lowkey` and `gcpsm`), so the round trips against a server are not here.

use std::time::Duration;

use atmos_provider::sensitive::SecretValue;
use atmos_provider::store::{Location, StoreError, StoreSettings, registry};

fn settings(options: serde_json::Value) -> StoreSettings {
    StoreSettings {
        name: "s".into(),
        options: options.as_object().cloned().expect("an object"),
        identity: None,
    }
}

/// A guard far above the stores' own retry budget (30 s): only a hang trips it.
const HANG_GUARD: Duration = Duration::from_secs(120);

#[tokio::test]
async fn both_kinds_open_by_every_spelling_without_io() {
    // Unroutable hosts: opening must not touch them.
    let azure = settings(serde_json::json!({"vault_url": "https://nowhere.vault.azure.net/"}));
    for kind in ["azure/keyvault", "azure-key-vault"] {
        let store = registry::open(kind, &azure).await.expect(kind);
        assert_eq!(store.kind(), "azure/keyvault");
    }
    let gcp = settings(serde_json::json!({"project_id": "p", "locations": ["us-east1"]}));
    for kind in ["gcp/secretmanager", "google-secret-manager", "gsm"] {
        let store = registry::open(kind, &gcp).await.expect(kind);
        assert_eq!(store.kind(), "gcp/secretmanager");
    }
}

#[tokio::test]
async fn missing_required_options_are_config_errors() {
    let err = registry::open("azure/keyvault", &settings(serde_json::json!({})))
        .await
        .err()
        .expect("vault_url is required");
    assert!(
        matches!(err, StoreError::Config(ref m) if m.contains("vault_url")),
        "{err}"
    );
    if std::env::var_os("GOOGLE_CLOUD_PROJECT").is_none() {
        let err = registry::open("gsm", &settings(serde_json::json!({})))
            .await
            .err()
            .expect("project_id is required");
        assert!(
            matches!(err, StoreError::Config(ref m) if m.contains("project_id")),
            "{err}"
        );
    }
}

async fn assert_unavailable(kind: &str, options: serde_json::Value) {
    let store = registry::open(kind, &settings(options)).await.expect(kind);
    let loc = Location::Named("app-db".into());
    let value = SecretValue::new("hunter2".to_owned());
    let read = tokio::time::timeout(HANG_GUARD, store.read(&loc))
        .await
        .expect("read hung");
    let write = tokio::time::timeout(HANG_GUARD, store.write(&loc, &value))
        .await
        .expect("write hung");
    let delete = tokio::time::timeout(HANG_GUARD, store.delete(&loc))
        .await
        .expect("delete hung");
    for (what, err) in [
        ("read", read.err()),
        ("write", write.err()),
        ("delete", delete.err()),
    ] {
        let err = err.unwrap_or_else(|| panic!("{kind} {what} against a closed port succeeded"));
        assert!(
            matches!(err, StoreError::Unavailable { .. }),
            "{kind} {what}: {err}"
        );
        let text = err.to_string();
        assert!(
            text.contains("app-db"),
            "{kind} {what} names the location: {text}"
        );
        assert!(
            !text.contains("hunter2"),
            "{kind} {what} leaks the value: {text}"
        );
    }
}

#[tokio::test]
async fn azure_against_a_closed_port_is_unavailable() {
    assert_unavailable(
        "azure/keyvault",
        serde_json::json!({"vault_url": "https://127.0.0.1:1/", "purge": true}),
    )
    .await;
}

#[tokio::test]
async fn gcp_against_a_closed_port_is_unavailable() {
    assert_unavailable(
        "gcp/secretmanager",
        serde_json::json!({"project_id": "p", "endpoint": "http://127.0.0.1:1"}),
    )
    .await;
}
