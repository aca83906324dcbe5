use super::*;

async fn setup() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("v.db")).await.unwrap();
    (dir, store)
}

/// Another process on the same database file: its own connections.
async fn other_process(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("v.db")).await.unwrap()
}

const PLACE: SecretPlace<'static> = SecretPlace { external_credential: "X", principal: "P", user_id: "" };

async fn put(vault: &Vault, parameter: &str, value: &str) {
    vault.store_secret(&PLACE, parameter, value.as_bytes()).await.unwrap();
}

async fn sealed(store: &Store, parameter: &str) -> SealedSecret {
    store.secrets("X", "P", "").await.unwrap().into_iter().find(|s| s.parameter == parameter).unwrap()
}

async fn get(vault: &Vault, store: &Store, parameter: &str) -> String {
    vault.open_secret(&PLACE, &sealed(store, parameter).await).await.unwrap().to_string()
}

fn key_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_string()
}

#[tokio::test]
async fn seals_and_opens_bound_to_the_parameter_the_user_and_the_data_key() {
    let (dir, store) = setup().await;
    let vault = Vault::open(&store, &dir.path().join("key")).await.unwrap();
    let sealed = vault.seal(&PLACE, "apikey", b"s3cret-value").await.unwrap();
    assert_eq!(sealed.key_id, Some(1));
    assert!(!sealed.ciphertext.windows(12).any(|w| w == b"s3cret-value"));
    assert_eq!(vault.open_secret(&PLACE, &sealed).await.unwrap().as_str(), "s3cret-value");
    let moved = SealedSecret { parameter: "businessid".into(), ..sealed.clone() };
    let error = vault.open_secret(&PLACE, &moved).await.unwrap_err();
    assert!(matches!(error, VaultError::Tampered { .. }));
    assert!(!error.to_string().contains("s3cret"));
    let other_user = SecretPlace::new("X", "P", "005u");
    assert!(matches!(vault.open_secret(&other_user, &sealed).await, Err(VaultError::Tampered { .. })));
    let mut flipped = sealed.clone();
    flipped.ciphertext[0] ^= 1;
    assert!(matches!(vault.open_secret(&PLACE, &flipped).await, Err(VaultError::Tampered { .. })));
    // The data key's id is part of the associated data: a row relabelled with another key fails.
    let cipher = vault.data_key(1).await.unwrap().unwrap();
    let relabelled = SealedSecret { key_id: Some(7), ..sealed };
    assert!(open_with(&cipher, &PLACE, &relabelled).is_none());
}

#[tokio::test]
async fn the_key_file_is_private_and_a_wrong_key_is_refused() {
    let (dir, store) = setup().await;
    let key_path = dir.path().join("master.key");
    Vault::open(&store, &key_path).await.unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The same key file opens again; another key is refused.
    Vault::open(&store, &key_path).await.unwrap();
    let other = dir.path().join("other.key");
    let error = Vault::open(&store, &other).await.unwrap_err();
    assert!(matches!(error, VaultError::WrongKey), "{error}");
}

#[tokio::test]
async fn a_server_with_the_old_key_keeps_working_through_a_rotation_by_another_process_until_it_switches() {
    let (dir, store) = setup().await;
    let key_path = dir.path().join("master.key");
    let server = Vault::open(&store, &key_path).await.unwrap();
    put(&server, "apikey", "value-one").await;
    put(&server, "businessid", "value-two").await;
    server.heartbeat().await.unwrap();
    let old_key = key_of(&key_path);
    let old_master = server.master_id();

    let admin_store = other_process(&dir).await;
    let admin = Vault::open(&admin_store, &key_path).await.unwrap();
    let rotation = admin.rotate_with(None).await.unwrap();
    assert_eq!((rotation.secrets, rotation.progress.resealed, rotation.data_key), (2, 2, 2));
    assert_eq!(rotation.progress.retired_data_keys, [1]);
    assert_ne!(key_of(&key_path), old_key, "the key file holds the new key");
    assert!(!pending_key_file(&key_path).exists());
    // The server still uses the old master key, so it is not retired yet.
    assert!(rotation.progress.retired_masters.is_empty());
    assert_eq!(rotation.progress.masters_in_use.len(), 1);
    assert_eq!(rotation.progress.masters_in_use[0].master, old_master);
    assert!(!rotation.progress.finished());

    // The server opens every value, re-sealed under data key 2 (wrapped under its old master key too)…
    assert_eq!(server.master_id(), old_master);
    assert_eq!(sealed(&store, "apikey").await.key_id, Some(2));
    assert_eq!(get(&server, &store, "apikey").await, "value-one");
    // …and what it seals now goes under the active data key, which the new master key opens.
    put(&server, "apikey", "value-three").await;
    assert_eq!(sealed(&store, "apikey").await.key_id, Some(2));
    assert_eq!(get(&admin, &admin_store, "apikey").await, "value-three");
    let fresh = Vault::open(&other_process(&dir).await, &key_path).await.unwrap();
    assert_eq!(fresh.master_id(), rotation.new_master);
    assert_eq!(get(&fresh, &store, "businessid").await, "value-two");

    // While a live server uses it, the old key still opens the database.
    let old_path = dir.path().join("old.key");
    std::fs::write(&old_path, &old_key).unwrap();
    Vault::open(&store, &old_path).await.unwrap();

    // The server reads the rotated key file and switches; then the old master key is retired.
    assert!(server.follow_key_file().await);
    assert_eq!(server.master_id(), rotation.new_master);
    let progress = admin.finish_rotation().await.unwrap();
    assert_eq!(progress.retired_masters, std::slice::from_ref(&old_master));
    assert!(progress.finished(), "{progress:?}");
    let error = Vault::open(&store, &old_path).await.unwrap_err();
    assert!(
        matches!(&error, VaultError::RetiredMaster { master, .. } if *master == old_master),
        "the old key opens nothing once retired: {error}"
    );
    assert_eq!(get(&server, &store, "apikey").await, "value-three");
}

#[tokio::test]
async fn a_server_that_is_not_live_does_not_hold_the_old_key_back() {
    let (dir, store) = setup().await;
    let key_path = dir.path().join("master.key");
    let server = Vault::open(&store, &key_path).await.unwrap();
    put(&server, "apikey", "value-one").await;
    server.heartbeat().await.unwrap();
    // The server stops: its node is gone (a crashed one ages out after LIVE_FOR).
    server.leave().await.unwrap();
    let admin = Vault::open(&other_process(&dir).await, &key_path).await.unwrap();
    let rotation = admin.rotate_with(None).await.unwrap();
    assert_eq!(rotation.progress.retired_masters, std::slice::from_ref(&rotation.old_master));
    assert!(rotation.progress.finished());
}

#[tokio::test]
async fn an_environment_key_rotates_to_the_new_environment_key_and_writes_no_key_file() {
    let (dir, store) = setup().await;
    let encode = |key: &[u8; 32]| base64::engine::general_purpose::STANDARD.encode(key);
    let (first, second) = (encode(&random_key()), encode(&random_key()));
    let key_path = dir.path().join("unused.key");
    let vault = Vault::open_with(&store, &key_path, Some(&first)).await.unwrap();
    assert_eq!(vault.source, KeySource::Environment);
    put(&vault, "apikey", "value-one").await;
    assert!(matches!(vault.rotate_with(None).await, Err(VaultError::NoNewKey)));
    assert!(matches!(vault.rotate_with(Some(&first)).await, Err(VaultError::SameKey { .. })));
    let rotation = vault.rotate_with(Some(&second)).await.unwrap();
    assert!(rotation.progress.finished(), "no live process used the old key: {rotation:?}");
    assert!(!key_path.exists() && !pending_key_file(&key_path).exists());
    assert!(matches!(
        Vault::open_with(&store, &key_path, Some(&first)).await,
        Err(VaultError::RetiredMaster { .. })
    ));
    let next = Vault::open_with(&store, &key_path, Some(&second)).await.unwrap();
    assert_eq!(get(&next, &store, "apikey").await, "value-one");
}

/// A database as herald kept it before data keys: secrets and a check value sealed under the master key.
fn legacy_seal(master: &Master, place: &SecretPlace<'_>, parameter: &str, value: &[u8]) -> SealedSecret {
    let nonce = random_nonce();
    let aad = place.associated_data(parameter, None);
    let ciphertext = master
        .cipher
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: value, aad: aad.as_bytes() })
        .unwrap();
    SealedSecret { parameter: parameter.into(), key_id: None, nonce: nonce.to_vec(), ciphertext }
}

fn legacy_check(master: &Master) -> String {
    let nonce = random_nonce();
    let ciphertext = master
        .cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload { msg: CHECK_PLAINTEXT, aad: LEGACY_CHECK_KEY.as_bytes() },
        )
        .unwrap();
    base64::engine::general_purpose::STANDARD.encode([nonce.to_vec(), ciphertext].concat())
}

#[tokio::test]
async fn a_database_from_before_data_keys_moves_its_secrets_under_data_key_1() {
    let (dir, store) = setup().await;
    let key_path = dir.path().join("master.key");
    let key = random_key();
    write_key_file(&key_path, &key).unwrap();
    let master = Master::new(&key);
    store.set_meta(LEGACY_CHECK_KEY, &legacy_check(&master)).await.unwrap();
    store.put_secret("X", "P", "", &legacy_seal(&master, &PLACE, "apikey", b"value-one"), "t").await.unwrap();
    let mut broken = legacy_seal(&master, &PLACE, "businessid", b"value-two");
    broken.ciphertext[2] ^= 4;
    store.put_secret("X", "P", "", &broken, "t").await.unwrap();

    // Another key is refused by the old check value, and nothing changes.
    let error = Vault::open(&store, &dir.path().join("other.key")).await.unwrap_err();
    assert!(matches!(error, VaultError::WrongKey), "{error}");
    assert!(!store.has_data_keys().await.unwrap());

    let vault = Vault::open(&store, &key_path).await.unwrap();
    assert_eq!(sealed(&store, "apikey").await.key_id, Some(1));
    assert_eq!(get(&vault, &store, "apikey").await, "value-one");
    assert_eq!(store.meta(LEGACY_CHECK_KEY).await.unwrap(), None, "the wrappings prove the key now");
    // A row that was already broken stays as it was, and is reported.
    assert_eq!(sealed(&store, "businessid").await.key_id, None);
    assert_eq!(vault.health().await.unreadable_secrets, 1);
    let keys = store.data_keys().await.unwrap();
    assert_eq!(keys.iter().map(|k| (k.id, k.secrets)).collect::<Vec<_>>(), [(1, 1)]);
    // Opening again changes nothing; the key still proves itself, another is still refused.
    Vault::open(&store, &key_path).await.unwrap();
    assert_eq!(store.data_keys().await.unwrap().len(), 1);
    assert!(matches!(Vault::open(&store, &dir.path().join("other.key")).await, Err(VaultError::WrongKey)));
}

#[tokio::test]
async fn a_rotation_interrupted_between_its_commit_and_the_rename_finishes_on_the_next_open() {
    let (dir, store) = setup().await;
    let key_path = dir.path().join("master.key");
    let vault = Vault::open(&store, &key_path).await.unwrap();
    put(&vault, "apikey", "value-one").await;
    let old_key = key_of(&key_path);

    // Stopped before the commit: the pending file is ignored, the old key goes on.
    let (unused, _) = vault.new_master(None).unwrap();
    let reopened = Vault::open(&store, &key_path).await.unwrap();
    assert_eq!(reopened.master_id(), vault.master_id());
    assert_ne!(reopened.master_id(), unused.id);

    // Stopped after the commit, before the rename.
    let (new, pending) = vault.new_master(None).unwrap();
    vault.commit_rotation(&vault.master(), &new).await.unwrap();
    let (pending, _) = pending.unwrap();
    let new_key = key_of(&pending);
    assert_eq!(key_of(&key_path), old_key);
    // A server that holds the old key keeps working meanwhile.
    assert_eq!(get(&vault, &store, "apikey").await, "value-one");

    let recovered = Vault::open(&store, &key_path).await.unwrap();
    assert_eq!(recovered.master_id(), new.id);
    assert_eq!(key_of(&key_path), new_key);
    assert!(!pending.exists());
    let progress = recovered.finish_rotation().await.unwrap();
    assert_eq!(progress.resealed, 1);
    assert_eq!(sealed(&store, "apikey").await.key_id, Some(2));
    assert_eq!(get(&recovered, &store, "apikey").await, "value-one");
}

#[tokio::test]
async fn a_value_sealed_under_a_data_key_that_is_being_retired_is_never_orphaned() {
    let (dir, store) = setup().await;
    let key_path = dir.path().join("master.key");
    let server = Vault::open(&store, &key_path).await.unwrap();
    put(&server, "apikey", "value-one").await;
    server.heartbeat().await.unwrap();
    let admin = Vault::open(&other_process(&dir).await, &key_path).await.unwrap();
    let (new, _) = admin.new_master(None).unwrap();
    admin.commit_rotation(&admin.master(), &new).await.unwrap();

    // The server sealed under data key 1, having read the active key just before the commit.
    let old_cipher = server.data_key(1).await.unwrap().unwrap();
    let stale = seal_with(&old_cipher, 1, &PLACE, "businessid", b"value-two");
    store.put_secret("X", "P", "", &stale, "t").await.unwrap();
    // Data key 1 is not retired while a secret uses it…
    let now = crate::now_text();
    let retired = store.write(move |tx| tx.retire_unused_data_keys(2, &now)).await.unwrap();
    assert!(retired.is_empty());
    // …the rest of the rotation moves that value too, and then retires it.
    let progress = admin.finish_rotation().await.unwrap();
    assert_eq!((progress.resealed, progress.retired_data_keys.clone()), (2, vec![1]));
    assert_eq!(get(&admin, &store, "businessid").await, "value-two");

    // A value sealed under the retired key is refused, so it cannot be stored where nothing opens it…
    let late = seal_with(&old_cipher, 1, &PLACE, "businessid", b"value-three");
    let refused = store.put_secret("X", "P", "", &late, "t").await;
    assert!(matches!(refused, Err(StoreError::RetiredKey(1))), "{refused:?}");
    assert_eq!(get(&admin, &store, "businessid").await, "value-two");
    // …and the server's own path seals it again under the active key.
    put(&server, "businessid", "value-three").await;
    assert_eq!(sealed(&store, "businessid").await.key_id, Some(2));
    assert_eq!(get(&admin, &store, "businessid").await, "value-three");
}

#[tokio::test]
async fn a_tampered_row_stops_a_rotation_before_anything_changes() {
    let (dir, store) = setup().await;
    let key_path = dir.path().join("master.key");
    let vault = Vault::open(&store, &key_path).await.unwrap();
    let mut broken = vault.seal(&PLACE, "apikey", b"value-one").await.unwrap();
    broken.ciphertext[3] ^= 0x40;
    store.put_secret("X", "P", "", &broken, "t").await.unwrap();
    let key_before = key_of(&key_path);
    assert!(matches!(vault.rotate_with(None).await, Err(VaultError::Tampered { .. })));
    assert_eq!(key_of(&key_path), key_before);
    assert!(!pending_key_file(&key_path).exists());
    assert_eq!(sealed(&store, "apikey").await.ciphertext, broken.ciphertext);
    assert_eq!(store.data_keys().await.unwrap().len(), 1);
}

#[tokio::test]
async fn no_key_or_secret_appears_in_errors_debug_output_status_or_health() {
    let (dir, store) = setup().await;
    let key_path = dir.path().join("master.key");
    let vault = Vault::open(&store, &key_path).await.unwrap();
    let value = "s3cret-value-4821";
    put(&vault, "apikey", value).await;
    let mut broken = vault.seal(&PLACE, "businessid", value.as_bytes()).await.unwrap();
    broken.ciphertext[0] ^= 1;
    store.put_secret("X", "P", "", &broken, "t").await.unwrap();
    let old_key = key_of(&key_path);
    vault.heartbeat().await.unwrap();
    let admin = Vault::open(&other_process(&dir).await, &key_path).await.unwrap();
    let refused = admin.rotate_with(None).await.unwrap_err();
    store
        .put_secret("X", "P", "", &vault.seal(&PLACE, "businessid", b"fine-now").await.unwrap(), "t")
        .await
        .unwrap();
    let rotation = admin.rotate_with(None).await.unwrap();
    let new_key = key_of(&key_path);
    let old_path = dir.path().join("old.key");
    std::fs::write(&old_path, &old_key).unwrap();
    vault.leave().await.unwrap();
    admin.finish_rotation().await.unwrap();
    let retired = Vault::open(&store, &old_path).await.unwrap_err();
    let wrong = Vault::open(&store, &dir.path().join("other.key")).await.unwrap_err();
    let unavailable = VaultError::KeyUnavailable {
        external_credential: "X".into(),
        principal: "P".into(),
        parameter: "apikey".into(),
        key_id: 9,
        master: vault.master_id(),
    };
    let mut everything = format!(
        "{vault:?} {admin:?} {refused} {refused:?} {retired} {retired:?} {wrong} {wrong:?} {unavailable} {unavailable:?} {rotation:?} {}",
        serde_json::to_string(&rotation).unwrap()
    );
    everything.push_str(&serde_json::to_string(&admin.status().await.unwrap()).unwrap());
    everything.push_str(&serde_json::to_string(&admin.health().await).unwrap());
    everything.push_str(&format!("{:?}", store.wraps_under(&admin.master_id()).await.unwrap()));
    let hex = |text: &str| {
        let bytes = base64::engine::general_purpose::STANDARD.decode(text).unwrap();
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    for secret in [value, old_key.as_str(), new_key.as_str(), &hex(&old_key), &hex(&new_key), "fine-now"] {
        assert!(!everything.contains(secret), "{secret} appears in: {everything}");
    }
    assert!(everything.contains(&rotation.new_master), "fingerprints are shown");
}
