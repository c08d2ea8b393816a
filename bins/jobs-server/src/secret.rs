//! The HS256 secret: the length a configured one must have, and the development secret that
//! is generated when none is configured and kept beside the database, so that printed tokens
//! survive a restart and `jobs-server token` works against a development server.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use jobs_store::DatabaseUrl;
use rand::RngCore;

/// The shortest HS256 secret accepted: as long as the hash (RFC 7518 §3.2).
pub const MIN_SECRET_BYTES: usize = 32;

/// Refuses a secret shorter than [`MIN_SECRET_BYTES`], saying why.
pub fn check(secret: &str) -> anyhow::Result<()> {
    if secret.len() < MIN_SECRET_BYTES {
        bail!(
            "JOBS_JWT_SECRET is {} bytes long; it must be at least {MIN_SECRET_BYTES} bytes: a \
             shorter HS256 key can be found by brute force from any one token \
             (try `openssl rand -hex 32`)",
            secret.len()
        );
    }
    Ok(())
}

/// Where the development secret lives: beside the SQLite file (`jobs.db` → `jobs.db-jwt-secret`),
/// or `./data/jwt-secret` on PostgreSQL.
pub fn dev_secret_path(database_url: &str) -> anyhow::Result<PathBuf> {
    Ok(match DatabaseUrl::parse(database_url)? {
        DatabaseUrl::Sqlite(path) => {
            let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
            name.push("-jwt-secret");
            path.with_file_name(name)
        }
        DatabaseUrl::Postgres(_) => PathBuf::from("./data/jwt-secret"),
    })
}

/// Reads the development secret, if one was generated before.
pub fn read_dev_secret(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let secret = text.trim().to_owned();
            check(&secret).with_context(|| format!("the secret in {}", path.display()))?;
            Ok(Some(secret))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// The development secret at `path`: the one kept there, or a new one written there,
/// readable by its owner only. Returns the secret and whether it was just made.
pub fn load_or_create_dev_secret(path: &Path) -> anyhow::Result<(String, bool)> {
    if let Some(secret) = read_dev_secret(path)? {
        return Ok((secret, false));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            writeln!(file, "{secret}")
                .and_then(|()| file.sync_all())
                .with_context(|| format!("writing {}", path.display()))?;
            Ok((secret, true))
        }
        // Another process made it first: use theirs.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            let secret = read_dev_secret(path)?
                .with_context(|| format!("{} vanished while being read", path.display()))?;
            Ok((secret, false))
        }
        Err(err) => Err(err).with_context(|| format!("creating {}", path.display())),
    }
}

/// The database URL without its password (in the user info or a `password=` parameter),
/// for logs.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.to_owned() };
    let authority_end =
        url[scheme_end..].find(['/', '?', '#']).map_or(url.len(), |i| scheme_end + i);
    let authority = &url[scheme_end..authority_end];
    let mut out = url[..scheme_end].to_owned();
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            out.push_str(userinfo.split(':').next().unwrap_or(""));
            if userinfo.contains(':') {
                out.push_str(":***");
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let tail = &url[authority_end..];
    let Some(q) = tail.find('?') else {
        out.push_str(tail);
        return out;
    };
    out.push_str(&tail[..=q]);
    let params: Vec<String> = tail[q + 1..]
        .split('&')
        .map(|param| {
            let key = param.split('=').next().unwrap_or("");
            if key.eq_ignore_ascii_case("password") {
                format!("{key}=***")
            } else {
                param.to_owned()
            }
        })
        .collect();
    out.push_str(&params.join("&"));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_taken_out_of_database_urls() {
        assert_eq!(redact_url("postgres://u:hunter2@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(
            redact_url("postgres://u@h/db?sslmode=require"),
            "postgres://u@h/db?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://h/db?user=u&password=hunter2&sslmode=require"),
            "postgres://h/db?user=u&password=***&sslmode=require"
        );
        assert_eq!(
            redact_url("postgresql://u:p%40ss@h/db?application_name=a@b"),
            "postgresql://u:***@h/db?application_name=a@b"
        );
        assert_eq!(redact_url("sqlite://./data/jobs.db"), "sqlite://./data/jobs.db");
    }

    #[test]
    fn a_secret_shorter_than_32_bytes_is_refused_with_the_reason() {
        let err = check("x").unwrap_err().to_string();
        assert!(err.contains("at least 32 bytes"), "{err}");
        assert!(check(&"k".repeat(31)).is_err());
        assert!(check(&"k".repeat(32)).is_ok());
    }

    #[test]
    fn the_dev_secret_sits_beside_the_sqlite_file() {
        assert_eq!(
            dev_secret_path("sqlite:///var/lib/jobs/jobs.db").unwrap(),
            PathBuf::from("/var/lib/jobs/jobs.db-jwt-secret")
        );
        assert_eq!(
            dev_secret_path("postgres://u@h/db").unwrap(),
            PathBuf::from("./data/jwt-secret")
        );
    }

    #[test]
    fn the_dev_secret_is_made_once_owner_only_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/jobs.db-jwt-secret");
        let (first, created) = load_or_create_dev_secret(&path).unwrap();
        assert!(created);
        assert_eq!(first.len(), 64);
        let (again, created) = load_or_create_dev_secret(&path).unwrap();
        assert!(!created);
        assert_eq!(again, first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
