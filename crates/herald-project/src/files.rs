//! Reading the project folder: regular files only, links only to other project files, each file under
//! a size limit.
//!
//! A project folder comes from other hands (a pull request, a copied example) and is read by commands
//! that print what they find. A link `flows/Key.yaml -> ../herald.key` once made `herald flow validate`
//! print the master key inside a parse error, a FIFO in `flows/` made every command hang, and a 57 MB
//! flow exhausted memory. So nothing is opened before it is known to be a regular file inside the
//! project's folders and small enough, and nothing that is refused is ever read.

use crate::diagnostics::{Diagnostic, Diagnostics};
use herald_codes as codes;
use std::fs::Metadata;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// The largest `herald.toml`, in bytes.
pub const MAX_TOML_BYTES: usize = 1024 * 1024;
/// The largest YAML file of the project (object, credential, service, permission set, flow, webhook).
pub const MAX_YAML_BYTES: usize = 2 * 1024 * 1024;
/// The largest OpenAPI file in `services/`.
pub const MAX_SPEC_BYTES: usize = herald_openapi::limits::MAX_SPEC_BYTES;
/// The deepest nesting of a YAML project file (a flow's sample JSON is the deepest part).
pub const MAX_YAML_DEPTH: usize = 64;
/// The most nodes (keys, values and list items) of one YAML project file.
pub const MAX_YAML_NODES: usize = 100_000;

/// The folders of a project, in the order they are read.
pub(crate) const FOLDERS: [&str; 7] =
    ["objects", "credentials", "services", "permissions", "flows", "webhooks", "labels"];

/// "2 MiB", for messages.
pub(crate) fn mib(bytes: usize) -> String {
    format!("{} MiB", bytes / (1024 * 1024))
}

/// Reads `herald.toml` and every project file of `root`. Files that are refused or cannot be read are
/// reported and left out; `None` when there is no usable `herald.toml`.
pub fn read_dir(root: &Path) -> (Option<Vec<(PathBuf, String)>>, Diagnostics) {
    let mut diagnostics = Diagnostics::default();
    let no_project = |message: String| {
        Diagnostic::new(codes::HP001, root.join("herald.toml"), message)
            .hint("run herald in a project folder, or create herald.toml (see docs/project-format.md)")
    };
    let canonical_root = match root.canonicalize() {
        Ok(path) => path,
        Err(error) => {
            let message = if error.kind() == std::io::ErrorKind::NotFound {
                format!("{} is not a herald project: it has no herald.toml", root.display())
            } else {
                format!("cannot read the folder {}: {error}", root.display())
            };
            diagnostics.push(no_project(message));
            return (None, diagnostics);
        }
    };
    let reader = Reader { root, canonical_root: &canonical_root };
    let mut files = Vec::new();
    match reader.read(Path::new("herald.toml"), MAX_TOML_BYTES) {
        Ok(text) => files.push((PathBuf::from("herald.toml"), text)),
        Err(Refusal::Missing) => {
            diagnostics.push(no_project(format!(
                "{} is not a herald project: it has no herald.toml",
                root.display()
            )));
            return (None, diagnostics);
        }
        Err(refusal) => {
            diagnostics.push(refusal.diagnostic(Path::new("herald.toml"), MAX_TOML_BYTES));
            return (None, diagnostics);
        }
    }
    for folder in FOLDERS {
        let dir = root.join(folder);
        let Ok(meta) = std::fs::symlink_metadata(&dir) else { continue };
        if meta.file_type().is_symlink() && !reader.inside(&dir) {
            diagnostics.push(
                Diagnostic::new(
                    codes::HP029,
                    folder,
                    format!("the folder {folder}/ is a link that leads outside the project folder; herald does not follow it"),
                )
                .hint(format!("replace the link with the folder itself (a real {folder}/ inside the project)")),
            );
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut names: Vec<std::ffi::OsString> =
            entries.filter_map(|e| e.ok().map(|e| e.file_name())).collect();
        names.sort();
        for name in names {
            let relative = PathBuf::from(folder).join(&name);
            let spec_file = folder == "services" && relative.extension().is_some_and(|e| e == "json");
            if !is_yaml(&relative) && !spec_file {
                continue;
            }
            // services/ may hold OpenAPI files in YAML; which a .yaml file is shows only in its text.
            let limit = if folder == "services" { MAX_SPEC_BYTES } else { MAX_YAML_BYTES };
            match reader.read(&relative, limit) {
                Ok(text) => files.push((relative, text)),
                Err(refusal) => diagnostics.push(refusal.diagnostic(&relative, limit)),
            }
        }
    }
    (Some(files), diagnostics)
}

pub(crate) fn is_yaml(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

struct Reader<'a> {
    root: &'a Path,
    canonical_root: &'a Path,
}

/// Why a file was not read. None of these carry anything of the file's content.
enum Refusal {
    Missing,
    /// A link to nothing.
    Dangling,
    /// A link that leads out of the project folder.
    Outside,
    /// A link to a file inside the project that is not one of its project files (`herald.key`).
    NotProjectFile(PathBuf),
    /// A FIFO, socket or device: never opened.
    Special(&'static str),
    Directory,
    TooLarge(u64),
    NotUtf8,
    Io(std::io::Error),
}

impl Reader<'_> {
    /// Whether `path` resolves to a place inside the project folder.
    fn inside(&self, path: &Path) -> bool {
        path.canonicalize().is_ok_and(|p| p.starts_with(self.canonical_root))
    }

    fn read(&self, relative: &Path, limit: usize) -> Result<String, Refusal> {
        let path = self.root.join(relative);
        let link = std::fs::symlink_metadata(&path).map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => Refusal::Missing,
            _ => Refusal::Io(error),
        })?;
        let target = path.canonicalize().map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => Refusal::Dangling,
            _ => Refusal::Io(error),
        })?;
        // A link, or a file reached through a linked folder, must resolve to a project file: anything
        // else inside the folder (the key file, the database) is no more readable than a file outside.
        let Ok(inner) = target.strip_prefix(self.canonical_root) else { return Err(Refusal::Outside) };
        if (link.file_type().is_symlink() || inner != relative) && !is_project_file(inner) {
            return Err(Refusal::NotProjectFile(inner.to_path_buf()));
        }
        let meta = std::fs::metadata(&target).map_err(Refusal::Io)?;
        check_kind(&meta)?;
        if meta.len() > limit as u64 {
            return Err(Refusal::TooLarge(meta.len()));
        }
        let file = std::fs::File::open(&target).map_err(Refusal::Io)?;
        // The file may have been swapped or grown since it was looked at: check what was opened, and
        // never read past the limit.
        check_kind(&file.metadata().map_err(Refusal::Io)?)?;
        let mut bytes = Vec::new();
        file.take(limit as u64 + 1).read_to_end(&mut bytes).map_err(Refusal::Io)?;
        if bytes.len() > limit {
            return Err(Refusal::TooLarge(bytes.len() as u64));
        }
        String::from_utf8(bytes).map_err(|_| Refusal::NotUtf8)
    }
}

/// `herald.toml`, or a YAML or JSON file directly inside one of the project folders.
fn is_project_file(inner: &Path) -> bool {
    let parts: Vec<Component> = inner.components().collect();
    match parts.as_slice() {
        [Component::Normal(name)] => *name == "herald.toml",
        [Component::Normal(folder), Component::Normal(_)] => {
            FOLDERS.iter().any(|f| *folder == *f)
                && (is_yaml(inner)
                    || (*folder == "services" && inner.extension().is_some_and(|e| e == "json")))
        }
        _ => false,
    }
}

fn check_kind(meta: &Metadata) -> Result<(), Refusal> {
    let kind = meta.file_type();
    if kind.is_file() {
        return Ok(());
    }
    if kind.is_dir() {
        return Err(Refusal::Directory);
    }
    Err(Refusal::Special(special_kind(&kind)))
}

#[cfg(unix)]
fn special_kind(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &std::fs::FileType) -> &'static str {
    "not a regular file"
}

impl Refusal {
    fn diagnostic(self, relative: &Path, limit: usize) -> Diagnostic {
        let fix_link = "replace the link with the file itself, or remove it";
        match self {
            Refusal::Missing | Refusal::Dangling => {
                Diagnostic::new(codes::HP002, relative, "the file is a link to nothing").hint(fix_link)
            }
            Refusal::Outside => Diagnostic::new(
                codes::HP029,
                relative,
                "the file is a link that leads outside the project folder; herald does not follow it",
            )
            .hint(fix_link),
            Refusal::NotProjectFile(target) => Diagnostic::new(
                codes::HP029,
                relative,
                format!(
                    "the file is a link to {}, which is not a project file; herald follows links only to herald.toml and the YAML (and, in services/, JSON) files of the project's folders",
                    target.display()
                ),
            )
            .hint(fix_link),
            Refusal::Special(kind) => Diagnostic::new(
                codes::HP030,
                relative,
                format!("the file is {kind}, not a regular file; herald reads regular files only and did not open it"),
            )
            .hint("remove it, or replace it with a regular file"),
            Refusal::TooLarge(size) => Diagnostic::new(
                codes::HP031,
                relative,
                format!(
                    "the file is {size} bytes; herald reads files of at most {} ({limit} bytes) here",
                    mib(limit)
                ),
            )
            .hint(size_hint(relative)),
            Refusal::Directory => Diagnostic::new(
                codes::HP002,
                relative,
                "cannot read the file: it is a folder",
            )
            .hint("rename the folder so that it does not end in .yaml, .yml or .json, or move it out"),
            Refusal::NotUtf8 => Diagnostic::new(codes::HP002, relative, "cannot read the file: it is not UTF-8 text")
                .hint("save the file as UTF-8"),
            Refusal::Io(error) => Diagnostic::new(codes::HP002, relative, format!("cannot read the file: {error}"))
                .hint("check the file's permissions"),
        }
    }
}

/// How to get a file under its size limit, by the kind of file.
pub(crate) fn size_hint(relative: &Path) -> &'static str {
    let folder = relative.components().next().and_then(|c| c.as_os_str().to_str()).unwrap_or("");
    match folder {
        "services" => {
            "import a copy of the spec that keeps only the operations you use, or shorten the samples of the callout"
        }
        "flows" => "split the flow into smaller flows, or shorten its samples and descriptions",
        "herald.toml" => "herald.toml holds a few settings; remove what does not belong there",
        _ => "split the file, or remove what it does not need",
    }
}
