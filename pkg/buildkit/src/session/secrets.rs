//! The Secrets attachable: secret files of the host, read when BuildKit asks for them.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use tonic::{Request, Response, Status};

use super::MAX_SECRET_SIZE;
use crate::proto::moby::buildkit::secrets::v1::{
    secrets_server::Secrets, GetSecretRequest, GetSecretResponse,
};

/// Secrets from host files, read on each request so that nothing is kept in memory longer than
/// the call.
pub(super) struct SecretsService {
    pub(super) files: BTreeMap<String, PathBuf>,
}

#[tonic::async_trait]
impl Secrets for SecretsService {
    async fn get_secret(
        &self,
        request: Request<GetSecretRequest>,
    ) -> Result<Response<GetSecretResponse>, Status> {
        let id = request.into_inner().id;
        let Some(path) = self.files.get(&id) else {
            return Err(Status::not_found(format!("secret {id} not found")));
        };
        let path = path.clone();
        let data = tokio::task::spawn_blocking(move || read_secret(&id, &path))
            .await
            .map_err(|e| Status::internal(format!("reading a secret: {e}")))??;
        Ok(Response::new(GetSecretResponse { data }))
    }
}

/// Reads secret `id` from `path`, at most [`MAX_SECRET_SIZE`] bytes. The file was checked when
/// the build started, but it may have been replaced since: it is opened without blocking (opening
/// a FIFO waits for a writer), checked to be a regular file, and read no further than one byte
/// past the limit, so that neither a FIFO nor a huge file can hang the call or fill memory.
fn read_secret(id: &str, path: &Path) -> Result<Vec<u8>, Status> {
    use std::{io::Read, os::unix::fs::OpenOptionsExt};
    let cannot_read = |e: std::io::Error| {
        Status::unavailable(format!("secret {id}: cannot read {}: {e}", path.display()))
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(cannot_read)?;
    if !file.metadata().map_err(cannot_read)?.is_file() {
        return Err(Status::failed_precondition(format!(
            "secret {id}: {} is not a regular file",
            path.display()
        )));
    }
    let mut data = Vec::new();
    file.take(MAX_SECRET_SIZE + 1)
        .read_to_end(&mut data)
        .map_err(cannot_read)?;
    if data.len() as u64 > MAX_SECRET_SIZE {
        return Err(Status::failed_precondition(format!(
            "secret {id}: {} is larger than {MAX_SECRET_SIZE} bytes, the most BuildKit accepts",
            path.display()
        )));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn secrets_are_read_from_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "s3cr3t").unwrap();
        let service = SecretsService {
            files: [("token".to_owned(), file)].into(),
        };
        let response = service
            .get_secret(Request::new(GetSecretRequest {
                id: "token".into(),
                ..Default::default()
            }))
            .await
            .unwrap();
        assert_eq!(response.into_inner().data, b"s3cr3t");
        let missing = service
            .get_secret(Request::new(GetSecretRequest {
                id: "other".into(),
                ..Default::default()
            }))
            .await
            .unwrap_err();
        assert_eq!(missing.code(), tonic::Code::NotFound);
    }

    /// A secret file swapped for a FIFO or a huge file after the build's checks: the call
    /// answers an error at once, without waiting for a writer or reading the whole file.
    #[tokio::test]
    async fn secrets_that_are_fifos_or_too_large_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 600 * 1024]).unwrap();
        let fits = dir.path().join("fits");
        std::fs::write(&fits, vec![b'x'; MAX_SECRET_SIZE as usize]).unwrap();
        let service = SecretsService {
            files: [
                ("pipe".to_owned(), fifo),
                ("big".to_owned(), big),
                ("fits".to_owned(), fits),
            ]
            .into(),
        };
        let get = |id: &str| {
            let request = Request::new(GetSecretRequest {
                id: id.into(),
                ..Default::default()
            });
            let call = service.get_secret(request);
            async move {
                tokio::time::timeout(std::time::Duration::from_secs(10), call)
                    .await
                    .expect("the call answers without waiting")
            }
        };
        let pipe = get("pipe").await.unwrap_err();
        assert_eq!(pipe.code(), tonic::Code::FailedPrecondition);
        assert!(pipe.message().contains("not a regular file"), "{pipe:?}");
        let big = get("big").await.unwrap_err();
        assert_eq!(big.code(), tonic::Code::FailedPrecondition);
        assert!(big.message().contains("larger than"), "{big:?}");
        let fits = get("fits").await.unwrap();
        assert_eq!(fits.into_inner().data.len() as u64, MAX_SECRET_SIZE);
    }
}
