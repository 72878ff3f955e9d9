//! Jsonnet formatting with jrsonnet's formatter, for `brewkit fmt`.

use std::{io::Write, path::Path};

use jrsonnet_formatter::{format as format_once, FormatOptions};

/// How many passes at most until the output stops changing (the formatter is not always
/// idempotent in one pass).
const MAX_PASSES: usize = 10;

/// Why a file was not formatted.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not valid Jsonnet, left as it is (brewkit build definition-debug -f {} shows where)", path.display(), path.display())]
    Parse { path: std::path::PathBuf },
    #[error("{}: the formatter did not settle after {MAX_PASSES} passes; left as it is", path.display())]
    Unstable { path: std::path::PathBuf },
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// `text` formatted (two-space indent), or `None` when it does not parse.
pub fn format_text(text: &str) -> Option<Result<String, ()>> {
    // The formatter is not fit for invalid input (it may panic on it): parse first.
    let source = jrsonnet_ir::Source::new_virtual("<fmt>".into(), text.into());
    jrsonnet_ir_parser::parse(text, &jrsonnet_ir_parser::ParserSettings { source }).ok()?;
    let mut formatted = text.to_owned();
    for _ in 0..MAX_PASSES {
        let next = match format_once(&formatted, &FormatOptions { indent: 2 }) {
            Ok(next) => next.trim().to_owned(),
            Err(_) => return None,
        };
        if next == formatted {
            formatted.push('\n');
            return Some(Ok(formatted));
        }
        formatted = next;
    }
    Some(Err(()))
}

/// Formats the file at `path`. With `check`, only tells whether it is formatted. Otherwise a
/// changed file is replaced atomically (written to a temporary file beside it, then renamed),
/// keeping its permissions; when `path` is a symlink, the file it points to is the one replaced
/// and the link stays. Returns whether the file was (or, with `check`, would be) changed.
pub fn format_file(path: &Path, check: bool) -> Result<bool, FormatError> {
    let text = std::fs::read_to_string(path).map_err(|source| FormatError::Read {
        path: path.to_owned(),
        source,
    })?;
    let formatted = match format_text(&text) {
        None => {
            return Err(FormatError::Parse {
                path: path.to_owned(),
            })
        }
        Some(Err(())) => {
            return Err(FormatError::Unstable {
                path: path.to_owned(),
            })
        }
        Some(Ok(formatted)) => formatted,
    };
    if formatted == text {
        return Ok(false);
    }
    if check {
        return Ok(true);
    }
    let write_error = |source| FormatError::Write {
        path: path.to_owned(),
        source,
    };
    // Renaming onto a symlink would replace the link with a regular file: write the file it
    // points to instead (in that file's directory, so that the rename stays atomic).
    let target = std::fs::canonicalize(path).map_err(write_error)?;
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(write_error)?;
    temp.write_all(formatted.as_bytes()).map_err(write_error)?;
    if let Ok(meta) = std::fs::metadata(&target) {
        temp.as_file()
            .set_permissions(meta.permissions())
            .map_err(write_error)?;
    }
    temp.persist(&target).map_err(|e| write_error(e.error))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_is_stable() {
        let messy = "{a:1,\n      b:[1,2],\n// note\nc: {d:'x'}}";
        let once = format_text(messy).unwrap().unwrap();
        assert_ne!(once, messy);
        assert!(once.contains("// note"), "comments are kept: {once}");
        assert_eq!(
            format_text(&once).unwrap().unwrap(),
            once,
            "formatting is idempotent"
        );
    }

    #[test]
    fn invalid_jsonnet_is_not_touched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.jsonnet");
        std::fs::write(&path, "{ a: ").unwrap();
        assert!(matches!(
            format_file(&path, false),
            Err(FormatError::Parse { .. })
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{ a: ");
    }

    #[test]
    fn check_reports_without_writing_and_writing_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonnet");
        std::fs::write(&path, "{a:1}").unwrap();
        assert!(format_file(&path, true).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{a:1}");
        assert!(format_file(&path, false).unwrap());
        assert!(!format_file(&path, true).unwrap(), "formatted now");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_written_through_and_stays_a_link() {
        use std::os::unix::fs::{symlink, PermissionsExt};

        let dir = tempfile::tempdir().unwrap();
        // The link and its target in different directories, the link relative.
        let (shared, project) = (dir.path().join("shared"), dir.path().join("project"));
        std::fs::create_dir_all(&shared).unwrap();
        std::fs::create_dir_all(&project).unwrap();
        let target = shared.join("base.libsonnet");
        std::fs::write(&target, "{a:1}").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = project.join("brewkit.jsonnet");
        symlink("../shared/base.libsonnet", &link).unwrap();

        assert!(format_file(&link, false).unwrap());
        let meta = std::fs::symlink_metadata(&link).unwrap();
        assert!(meta.file_type().is_symlink(), "the link is still a link");
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            Path::new("../shared/base.libsonnet")
        );
        let formatted = std::fs::read_to_string(&target).unwrap();
        assert_eq!(formatted, format_text("{a:1}").unwrap().unwrap());
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640, "the target keeps its permissions");
        assert!(!format_file(&link, true).unwrap(), "formatted now");
        for dir in [&shared, &project] {
            assert_eq!(
                std::fs::read_dir(dir).unwrap().count(),
                1,
                "no temporary file left in {}",
                dir.display()
            );
        }
    }
}
