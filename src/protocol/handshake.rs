//! The go-plugin handshake: the magic cookie, protocol version negotiation, the private unix
//! socket, and the single line printed on stdout.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;

/// The environment variable OpenTofu and Terraform set to prove the process runs as their plugin.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
/// Its value (the same in OpenTofu, Terraform and terraform-plugin-go).
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
/// The only plugin protocol major version we speak.
pub const PROTOCOL_VERSION: u32 = 6;

/// What a person running the binary by hand sees on stderr.
pub const NOT_A_PROGRAM: &str = "This binary is a plugin for OpenTofu and Terraform \
(the `atmos` provider). These are not meant to be executed directly.\n\
Declare it in a `required_providers` block and run `tofu init`; OpenTofu starts it when needed.\n";

/// Why the handshake cannot proceed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// Not started by a plugin client.
    #[error("missing or wrong {MAGIC_COOKIE_KEY}")]
    NoCookie,
    /// The client offers no version we speak.
    #[error("the client offers plugin protocol versions [{0}]; this provider speaks only 6")]
    Version(String),
    /// The socket could not be created.
    #[error("creating the plugin socket: {0}")]
    Socket(#[from] std::io::Error),
}

/// Checks the magic cookie.
pub fn check_cookie(value: Option<&str>) -> Result<(), HandshakeError> {
    match value {
        Some(v) if v == MAGIC_COOKIE_VALUE => Ok(()),
        _ => Err(HandshakeError::NoCookie),
    }
}

/// Picks the protocol version from `PLUGIN_PROTOCOL_VERSIONS` (comma-separated, any order).
/// Without the variable, the client is older than version negotiation and we answer 6.
pub fn negotiate_version(offered: Option<&str>) -> Result<u32, HandshakeError> {
    let Some(list) = offered.filter(|s| !s.trim().is_empty()) else {
        return Ok(PROTOCOL_VERSION);
    };
    let speaks_ours = list
        .split(',')
        .filter_map(|v| v.trim().parse::<u32>().ok())
        .any(|v| v == PROTOCOL_VERSION);
    if speaks_ours {
        Ok(PROTOCOL_VERSION)
    } else {
        Err(HandshakeError::Version(list.to_owned()))
    }
}

/// A directory only this user can enter, holding the socket; removed when dropped.
pub struct SocketDir {
    dir: tempfile::TempDir,
}

impl SocketDir {
    /// Creates it inside `parent` (`PLUGIN_UNIX_SOCKET_DIR`) or the system temp directory.
    pub fn create(parent: Option<&Path>) -> Result<SocketDir, HandshakeError> {
        let mut builder = tempfile::Builder::new();
        builder.prefix("atmos-plugin-");
        let dir = match parent {
            Some(p) => builder.tempdir_in(p)?,
            None => builder.tempdir()?,
        };
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))?;
        Ok(SocketDir { dir })
    }

    /// The socket path inside it.
    pub fn socket_path(&self) -> PathBuf {
        self.dir.path().join("plugin.sock")
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Applies `PLUGIN_UNIX_SOCKET_GROUP` (a numeric gid): group ownership and mode 0660 on the
/// socket and group access to its directory, so a client in that group can connect.
pub fn apply_socket_group(dir: &SocketDir, group: &str) -> Result<(), HandshakeError> {
    let gid: u32 = group.trim().parse().map_err(|_| {
        HandshakeError::Socket(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("PLUGIN_UNIX_SOCKET_GROUP must be a numeric group id, got {group:?}"),
        ))
    })?;
    let socket = dir.socket_path();
    std::os::unix::fs::chown(&socket, None, Some(gid))?;
    std::os::unix::fs::chown(dir.path(), None, Some(gid))?;
    fs::set_permissions(&socket, fs::Permissions::from_mode(0o660))?;
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o710))?;
    Ok(())
}

/// The one line printed on stdout: `1|6|unix|<socket>|grpc|<base64 DER cert, unpadded>`.
pub fn handshake_line(version: u32, socket: &Path, server_cert_der: Option<&[u8]>) -> String {
    let cert = server_cert_der
        .map(|der| base64::engine::general_purpose::STANDARD_NO_PAD.encode(der))
        .unwrap_or_default();
    format!("1|{version}|unix|{}|grpc|{cert}\n", socket.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_must_match_exactly() {
        assert!(check_cookie(Some(MAGIC_COOKIE_VALUE)).is_ok());
        assert!(check_cookie(Some("nope")).is_err());
        assert!(check_cookie(None).is_err());
    }

    #[test]
    fn version_six_is_picked_from_any_order() {
        assert_eq!(negotiate_version(Some("5,6")).ok(), Some(6));
        assert_eq!(negotiate_version(Some("6,5")).ok(), Some(6));
        assert_eq!(negotiate_version(None).ok(), Some(6));
        assert!(negotiate_version(Some("4,5")).is_err());
    }

    #[test]
    fn line_has_six_fields_and_unpadded_cert() {
        let line = handshake_line(6, Path::new("/tmp/x/plugin.sock"), Some(&[1, 2, 3, 4]));
        assert_eq!(line, "1|6|unix|/tmp/x/plugin.sock|grpc|AQIDBA\n");
        let plain = handshake_line(6, Path::new("/s"), None);
        assert_eq!(plain, "1|6|unix|/s|grpc|\n");
    }

    #[test]
    fn socket_dir_is_private_and_removed() {
        let dir = SocketDir::create(None).expect("dir");
        let path = dir.path().to_path_buf();
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        drop(dir);
        assert!(!path.exists());
    }
}
