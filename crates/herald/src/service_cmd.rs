//! `herald service import` and `herald service show`.
//!
//! An import writes into the project folder, so it must never leave a project that no longer loads:
//! the whole project is loaded first, in memory, as it would be with the new files, and the files are
//! written only when it loads, each through a temporary file in the same folder that is synced and then
//! renamed into place.

use crate::serve::{load_project, with_root};
use anyhow::{Context, Result, bail};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Imports the spec, loads the project as it would be with the spec and the service file added, and
/// writes both only if it loads; on any problem prints it and writes nothing.
pub fn import(
    spec: &Path,
    name: &str,
    credential: &str,
    operations: &[String],
    server: Option<&str>,
    project: &Path,
) -> Result<ExitCode> {
    if !herald_project::is_api_name(name) {
        bail!(
            "`{name}` is not a valid service name: use letters, digits and single underscores, starting with a letter"
        );
    }
    if !herald_project::is_api_name(credential) {
        bail!("`{credential}` is not a named credential's name: use the name of a file in credentials/");
    }
    let text = read_spec(spec)?;
    let extension = if text.trim_start().starts_with('{') { "json" } else { "yaml" };
    let spec_name = format!("{name}.openapi.{extension}");
    let service_name = format!("{name}.yaml");
    let services = project.join("services");
    if std::fs::symlink_metadata(services.join(&service_name)).is_ok() {
        bail!("{} already exists; remove it first to import again", services.join(&service_name).display());
    }
    let yaml = service_file(credential, &spec_name, operations, server);

    let (files, problems) = herald_project::read_dir(project);
    let Some(mut files) = files.filter(|_| problems.is_empty()) else {
        eprintln!("{}", with_root(project, &problems.to_string()));
        eprintln!("Nothing was written: the project must load before a service is added to it.");
        return Ok(ExitCode::FAILURE);
    };
    let spec_path = PathBuf::from("services").join(&spec_name);
    files.retain(|(path, _)| *path != spec_path);
    files.push((spec_path, text.clone()));
    files.push((PathBuf::from("services").join(&service_name), yaml.clone()));
    let compiled = match herald_flow::load_files(project.to_path_buf(), files) {
        Ok(compiled) => compiled,
        Err(mut problems) => {
            // The spec is not in the project yet: its problems point at the file that was given.
            for problem in &mut problems.0 {
                if problem.file == Path::new("services").join(&spec_name) {
                    problem.file = spec.to_path_buf();
                }
            }
            eprintln!("{}", with_root(project, &problems.to_string()));
            eprintln!("Nothing was written: with services/{service_name} the project would not load.");
            return Ok(ExitCode::FAILURE);
        }
    };

    std::fs::create_dir_all(&services).with_context(|| format!("cannot create {}", services.display()))?;
    // The spec first: a spec that no service names yet is harmless if the second write fails.
    write_atomically(&services, &spec_name, text.as_bytes(), true)?;
    if let Err(error) = write_atomically(&services, &service_name, yaml.as_bytes(), false) {
        let _ = std::fs::remove_file(services.join(&spec_name));
        return Err(error);
    }
    println!("Wrote services/{service_name} and services/{spec_name}:");
    if let Some(service) = compiled.project.services.get(name) {
        print!("{}", herald_openapi::describe(&service.def.model));
    }
    // Where the spec contradicts its provider's published one (HW003-HW005): it loads, but the
    // provider may refuse what herald accepts.
    let written = Path::new("services").join(&spec_name);
    for warning in compiled.warnings.iter().filter(|w| w.file == written) {
        eprintln!("{}", with_root(project, &warning.to_string()));
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads the spec given on the command line, up to the size the loader accepts for a spec.
fn read_spec(spec: &Path) -> Result<String> {
    let file = std::fs::File::open(spec).with_context(|| format!("cannot read {}", spec.display()))?;
    let limit = herald_project::MAX_SPEC_BYTES;
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", spec.display()))?;
    if bytes.len() > limit {
        bail!(
            "{} is over {limit} bytes, the most herald reads of a spec; import a copy that keeps only the operations you use",
            spec.display()
        );
    }
    String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", spec.display()))
}

/// `services/NAME.yaml`. Operation ids and the server URL are written as JSON strings, which YAML reads
/// as double-quoted scalars, so no character of theirs can change the file's structure.
fn service_file(credential: &str, spec_name: &str, operations: &[String], server: Option<&str>) -> String {
    let quote = |text: &str| serde_json::Value::from(text).to_string();
    let mut yaml = format!("kind: external-service\nnamed_credential: {credential}\nspec: {spec_name}\n");
    if !operations.is_empty() {
        let list: Vec<String> = operations.iter().map(|op| quote(op)).collect();
        yaml.push_str(&format!("operations: [{}]\n", list.join(", ")));
    }
    if let Some(server) = server {
        yaml.push_str(&format!("server: {}\n", quote(server)));
    }
    yaml
}

/// Writes `dir/name` all at once: a temporary file in `dir`, synced, renamed over the name (or, when
/// `replace` is false, only if the name is still free), then the folder synced.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8], replace: bool) -> Result<()> {
    let target = dir.join(name);
    let mut temporary = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    temporary.write_all(bytes).with_context(|| format!("cannot write {}", target.display()))?;
    temporary.as_file().sync_all().with_context(|| format!("cannot write {}", target.display()))?;
    if replace {
        temporary.persist(&target).map_err(|e| e.error)
    } else {
        temporary.persist_noclobber(&target).map_err(|e| e.error)
    }
    .with_context(|| format!("cannot write {}", target.display()))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))?;
    Ok(())
}

pub fn show(project: &Path, name: &str) -> Result<ExitCode> {
    let Ok(compiled) = load_project(project) else { return Ok(ExitCode::FAILURE) };
    let Some(service) = compiled.project.services.get(name) else {
        let hint = herald_project::did_you_mean(name, compiled.project.services.keys().map(String::as_str))
            .unwrap_or_else(|| {
                format!(
                    "services: {}",
                    compiled.project.services.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            });
        bail!("no service named `{name}` in {}; {hint}", project.display());
    };
    print!("{}", herald_openapi::describe(&service.def.model));
    Ok(ExitCode::SUCCESS)
}
