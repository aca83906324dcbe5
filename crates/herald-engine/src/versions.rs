//! Project versions: the project a server runs can change under it (`herald reload`, SIGHUP), and a
//! run must never mix two versions' flows.
//!
//! Salesforce keeps every version of a flow, and an interview that is paused or waiting resumes on
//! the version it started on, even after a newer one is activated. herald does the same for the whole
//! project folder: each version is loaded and compiled before it is used, recorded in the database
//! with its files under their content hash (so the same files are the same version, across restarts
//! too), and swapped in whole under a lock no run holds while it computes. New runs start on the
//! current version and carry its number; a run resumed later (a retry, a wait, a recovery after a
//! crash) gets its own version's compiled project, from memory, or compiled again from the stored
//! files when this process never had it. A folder that does not load is refused with its diagnostics
//! and the current version keeps running.
//!
//! What is versioned is the flows (with the objects, services and resources they were compiled
//! against). Named credentials' rate limits, `[runtime] workers`, `[server] listen` and `[database]`
//! are read when the server starts, as Salesforce's named credentials are not versioned with flows.

use crate::{Engine, EngineError, now_text};
use herald_flow::CompiledProject;
use herald_project::Diagnostics;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

/// The files of a project as read from its folder: path relative to the folder, text.
pub type ProjectFiles = Vec<(PathBuf, String)>;

/// The version of the project that new runs start on.
#[derive(Debug)]
pub struct LiveVersion {
    /// Its number in the database; `None` when this engine records no versions (debug, admin
    /// commands), and then runs go on with whatever project is loaded.
    pub seq: Option<i64>,
    /// SHA-256 of its files, hex (empty when not recorded).
    pub hash: String,
    pub project: Arc<CompiledProject>,
}

impl LiveVersion {
    /// `3 (1a2b3c4d5e6f)`, for logs and answers.
    pub fn describe(&self) -> String {
        match self.seq {
            Some(seq) => format!("{seq} ({})", short(&self.hash)),
            None => "unrecorded".into(),
        }
    }
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// What a reload did.
#[derive(Debug)]
pub struct Reloaded {
    pub version: Arc<LiveVersion>,
    /// False when the folder held the version already running: nothing was swapped.
    pub changed: bool,
    /// The new version's load warnings (HWxxx), as text.
    pub warnings: Vec<String>,
}

/// Why a reload kept the version that runs.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The folder does not load: the diagnostics, as `herald flow validate` prints them.
    #[error("{0}")]
    Invalid(String),
    #[error("this server was started without a project folder to reload from")]
    NoFolder,
    #[error(transparent)]
    Engine(#[from] EngineError),
}

pub(crate) struct Versions {
    current: RwLock<Arc<LiveVersion>>,
    /// Older versions compiled again for the runs still on them.
    compiled: Mutex<HashMap<i64, Arc<CompiledProject>>>,
    folder: Option<PathBuf>,
    /// One reload at a time, so that two cannot swap in each other's older files.
    reloading: tokio::sync::Mutex<()>,
}

impl Versions {
    pub(crate) fn new(version: LiveVersion, folder: Option<PathBuf>) -> Versions {
        Versions {
            current: RwLock::new(Arc::new(version)),
            compiled: Mutex::new(HashMap::new()),
            folder,
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn current(&self) -> Arc<LiveVersion> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn swap(&self, version: Arc<LiveVersion>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = version;
    }
}

/// The content hash of a project's files: independent of the order they were read in.
pub fn files_hash(files: &ProjectFiles) -> String {
    let mut sorted: Vec<&(PathBuf, String)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut hash = Sha256::new();
    for (path, text) in sorted {
        let path = path.to_string_lossy();
        hash.update((path.len() as u64).to_le_bytes());
        hash.update(path.as_bytes());
        hash.update((text.len() as u64).to_le_bytes());
        hash.update(text.as_bytes());
    }
    hex(&hash.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn encode(files: &ProjectFiles) -> String {
    let pairs: Vec<(String, &str)> =
        files.iter().map(|(path, text)| (path.to_string_lossy().into_owned(), text.as_str())).collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".into())
}

fn decode(text: &str) -> Result<ProjectFiles, String> {
    let pairs: Vec<(String, String)> =
        serde_json::from_str(text).map_err(|e| format!("its stored files cannot be read: {e}"))?;
    Ok(pairs.into_iter().map(|(path, text)| (PathBuf::from(path), text)).collect())
}

/// Reads a project folder and compiles it from exactly the files read, so that the version recorded
/// is the one that runs. Every problem is reported at once, as `herald flow validate` does.
pub fn load_folder(dir: &Path) -> Result<(CompiledProject, ProjectFiles), Diagnostics> {
    let (files, mut problems) = herald_project::files::read_dir(dir);
    let Some(files) = files else { return Err(problems) };
    match herald_flow::load_files(dir.to_path_buf(), files.clone()) {
        Ok(project) if problems.is_empty() => Ok((project, files)),
        Ok(_) => {
            problems.sort();
            Err(problems)
        }
        Err(mut found) => {
            found.0.append(&mut problems.0);
            found.sort();
            Err(found)
        }
    }
}

impl Engine {
    /// The project new runs start on.
    pub fn project(&self) -> Arc<CompiledProject> {
        Arc::clone(&self.inner.versions.current().project)
    }

    /// The version new runs start on.
    pub fn version(&self) -> Arc<LiveVersion> {
        self.inner.versions.current()
    }

    /// Records `files` as a version and returns its number.
    pub(crate) async fn record_version(&self, files: &ProjectFiles) -> Result<(i64, String), EngineError> {
        let hash = files_hash(files);
        let (encoded, key) = (encode(files), hash.clone());
        let seq =
            self.inner.store.write(move |tx| tx.add_project_version(&key, &encoded, &now_text())).await?;
        Ok((seq, hash))
    }

    /// The project of version `seq` when this process has it compiled (the current one, or an older
    /// one compiled for a run), without reading the database: for work inside a write.
    pub(crate) fn project_if_compiled(&self, seq: Option<i64>) -> Option<Arc<CompiledProject>> {
        let current = self.inner.versions.current();
        if seq.is_none() || current.seq == seq {
            return Some(Arc::clone(&current.project));
        }
        let seq = seq?;
        self.inner.versions.compiled.lock().unwrap_or_else(|e| e.into_inner()).get(&seq).cloned()
    }

    /// The compiled project of version `seq` (the current one for `None`): for a run to go on with
    /// the flows it started on. An old version is compiled again from its stored files once, then
    /// kept. The error says why the run cannot go on.
    pub(crate) async fn project_for(&self, seq: Option<i64>) -> Result<Arc<CompiledProject>, String> {
        let current = self.inner.versions.current();
        let Some(seq) = seq else { return Ok(Arc::clone(&current.project)) };
        if current.seq == Some(seq) {
            return Ok(Arc::clone(&current.project));
        }
        if let Some(project) =
            self.inner.versions.compiled.lock().unwrap_or_else(|e| e.into_inner()).get(&seq)
        {
            return Ok(Arc::clone(project));
        }
        let stored = self
            .inner
            .store
            .project_version(seq)
            .await
            .map_err(|e| format!("project version {seq} cannot be read: {e}"))?
            .ok_or_else(|| {
                format!("project version {seq}, which this run started on, is not in the database")
            })?;
        let files = decode(&stored.files).map_err(|e| format!("project version {seq}: {e}"))?;
        let root = self.inner.versions.folder.clone().unwrap_or_else(|| PathBuf::from("."));
        let compiled = tokio::task::spawn_blocking(move || herald_flow::load_files(root, files))
            .await
            .map_err(|e| format!("compiling project version {seq} did not finish: {e}"))?
            .map_err(|problems| {
                format!("project version {seq}, which this run started on, no longer compiles with this herald: {problems}")
            })?;
        let project = Arc::new(compiled);
        self.inner
            .versions
            .compiled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(seq, Arc::clone(&project));
        Ok(project)
    }

    /// Loads the project folder again; when it loads and differs from the version running, records
    /// it and makes it the version new runs start on. Runs already started stay on theirs. A folder
    /// that does not load changes nothing.
    pub async fn reload(&self) -> Result<Reloaded, ReloadError> {
        let Some(folder) = self.inner.versions.folder.clone() else { return Err(ReloadError::NoFolder) };
        let _one_at_a_time = self.inner.versions.reloading.lock().await;
        let read = folder.clone();
        let loaded = tokio::task::spawn_blocking(move || load_folder(&read))
            .await
            .map_err(|e| ReloadError::Invalid(format!("loading the project did not finish: {e}")))?;
        let (project, files) = loaded.map_err(|problems| ReloadError::Invalid(problems.to_string()))?;
        let warnings = project.warnings.iter().map(ToString::to_string).collect();
        let current = self.inner.versions.current();
        let hash = files_hash(&files);
        if hash == current.hash {
            return Ok(Reloaded { version: current, changed: false, warnings });
        }
        let (seq, hash) = self.record_version(&files).await?;
        let old = current.seq.map(|old| (old, Arc::clone(&current.project)));
        let version = Arc::new(LiveVersion { seq: Some(seq), hash, project: Arc::new(project) });
        self.inner.versions.swap(Arc::clone(&version));
        // The version just left behind is kept compiled for the runs still on it.
        if let Some((old, project)) = old {
            self.inner.versions.compiled.lock().unwrap_or_else(|e| e.into_inner()).insert(old, project);
        }
        tracing::info!(version = %version.describe(), "project reloaded");
        Ok(Reloaded { version, changed: true, warnings })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> ProjectFiles {
        pairs.iter().map(|(path, text)| (PathBuf::from(path), text.to_string())).collect()
    }

    #[test]
    fn the_hash_of_a_project_ignores_reading_order_and_follows_every_byte_and_name() {
        let a = files(&[("herald.toml", "x"), ("flows/F.yaml", "y")]);
        let b = files(&[("flows/F.yaml", "y"), ("herald.toml", "x")]);
        assert_eq!(files_hash(&a), files_hash(&b));
        assert_ne!(files_hash(&a), files_hash(&files(&[("herald.toml", "x"), ("flows/F.yaml", "y ")])));
        assert_ne!(files_hash(&a), files_hash(&files(&[("herald.toml", "x"), ("flows/G.yaml", "y")])));
        // The boundary between a name and its text cannot be moved without changing the hash.
        assert_ne!(files_hash(&files(&[("ab", "c")])), files_hash(&files(&[("a", "bc")])),);
    }

    #[test]
    fn stored_files_decode_to_what_was_encoded() {
        let project = files(&[("herald.toml", "name = \"x\"\n"), ("flows/Ü.yaml", "a: \"b\"\n")]);
        assert_eq!(decode(&encode(&project)).unwrap(), project);
        assert!(decode("not json").unwrap_err().contains("cannot be read"));
    }
}
