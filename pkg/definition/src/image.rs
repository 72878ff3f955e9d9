//! Image references normalized the way Docker does: `golang:1.22` → `docker.io/library/golang:1.22`.

const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPOSITORY_PREFIX: &str = "library/";

/// The fully qualified form of an image reference (`domain/path[:tag][@digest]`, `:latest` added
/// when there is neither tag nor digest), or why it is not a valid reference.
pub fn normalize(reference: &str) -> Result<String, String> {
    if reference.is_empty() {
        return Err("an image reference must not be empty".into());
    }
    let (name_and_tag, digest) = match reference.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (reference, None),
    };
    // A tag is the part after the last ':' that follows the last '/'; a ':' before that belongs
    // to a registry's port.
    let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
        Some(i) => (
            &name_and_tag[..last_slash + i],
            Some(&name_and_tag[last_slash + i + 1..]),
        ),
        None => (name_and_tag, None),
    };

    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first, rest.to_owned())
        }
        _ => (DEFAULT_DOMAIN, name.to_owned()),
    };
    let domain = if domain == LEGACY_DEFAULT_DOMAIN {
        DEFAULT_DOMAIN
    } else {
        domain
    };
    let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
        format!("{OFFICIAL_REPOSITORY_PREFIX}{path}")
    } else {
        path
    };

    check_domain(domain)?;
    for component in path.split('/') {
        check_component(component)?;
    }
    let mut out = format!("{domain}/{path}");
    if let Some(tag) = tag {
        check_tag(tag)?;
        out.push(':');
        out.push_str(tag);
    }
    if let Some(digest) = digest {
        check_digest(digest)?;
        out.push('@');
        out.push_str(digest);
    }
    if tag.is_none() && digest.is_none() {
        out.push_str(":latest");
    }
    Ok(out)
}

fn check_domain(domain: &str) -> Result<(), String> {
    let (host, port) = match domain.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (domain, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(format!("\"{domain}\" is not a valid registry host"))
    }
}

/// A path component: lowercase letters and digits, separated by `.`, `_`, `__` or `-` runs.
fn check_component(component: &str) -> Result<(), String> {
    let bytes = component.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let ok = !bytes.is_empty()
        && alnum(&bytes[0])
        && alnum(&bytes[bytes.len() - 1])
        && bytes
            .iter()
            .all(|b| alnum(b) || matches!(b, b'.' | b'_' | b'-'))
        && !component.contains("..")
        && !component.contains("___");
    if ok {
        Ok(())
    } else if component.chars().any(|c| c.is_ascii_uppercase()) {
        Err(format!("\"{component}\" must be lowercase"))
    } else {
        Err(format!(
            "\"{component}\" is not a valid repository name component (lowercase letters, digits, and . _ - between them)"
        ))
    }
}

fn check_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!("\"{tag}\" is not a valid tag"))
    }
}

fn check_digest(digest: &str) -> Result<(), String> {
    let ok = digest.split_once(':').is_some_and(|(algorithm, hex)| {
        !algorithm.is_empty()
            && algorithm.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '.' | '_' | '-')
            })
            && hex.len() >= 32
            && hex.chars().all(|c| c.is_ascii_hexdigit())
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{digest}\" is not a valid digest (algorithm:hex)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn official_images_get_docker_io_library() {
        assert_eq!(
            normalize("golang:1.22").unwrap(),
            "docker.io/library/golang:1.22"
        );
        assert_eq!(
            normalize("busybox").unwrap(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            normalize("docker.io/busybox").unwrap(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            normalize("index.docker.io/busybox:1").unwrap(),
            "docker.io/library/busybox:1"
        );
    }

    #[test]
    fn user_images_and_registries() {
        assert_eq!(
            normalize("alpine/git").unwrap(),
            "docker.io/alpine/git:latest"
        );
        assert_eq!(
            normalize("localhost:5000/team/app:v1").unwrap(),
            "localhost:5000/team/app:v1"
        );
        assert_eq!(normalize("localhost/app").unwrap(), "localhost/app:latest");
        assert_eq!(normalize("ghcr.io/o/r/x:1.0").unwrap(), "ghcr.io/o/r/x:1.0");
        assert_eq!(
            normalize("127.0.0.1:5000/app").unwrap(),
            "127.0.0.1:5000/app:latest"
        );
    }

    #[test]
    fn digests_are_kept_without_adding_latest() {
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            normalize(&format!("busybox@{digest}")).unwrap(),
            format!("docker.io/library/busybox@{digest}")
        );
        assert_eq!(
            normalize(&format!("busybox:1@{digest}")).unwrap(),
            format!("docker.io/library/busybox:1@{digest}")
        );
    }

    #[test]
    fn invalid_references_say_why() {
        assert!(normalize("Golang:1.22").unwrap_err().contains("lowercase"));
        assert!(normalize("golang:").unwrap_err().contains("tag"));
        assert!(normalize("golang:1.22 ").unwrap_err().contains("tag"));
        assert!(normalize("busybox@sha256:xyz")
            .unwrap_err()
            .contains("digest"));
        assert!(normalize("a//b").is_err());
        assert!(normalize("").is_err());
        assert!(normalize("-bad").is_err());
    }
}
