//! The SSH attachable: the host's ssh agent, forwarded to runs that mount it.

use std::path::PathBuf;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::{Request, Response, Status, Streaming};

use super::{tasks::Tasks, BoxStream};
use crate::proto::moby::sshforward::v1::{
    ssh_server::Ssh, BytesMessage as SshBytes, CheckAgentRequest, CheckAgentResponse,
};

/// The ssh id BuildKit asks for when a mount names none.
const DEFAULT_SSH_ID: &str = "default";
/// gRPC metadata key carrying the ssh id of a ForwardAgent call.
const SSH_ID_KEY: &str = "buildkit.ssh.id";

/// The host's ssh agent, forwarded as id `default`.
pub(super) struct SshService {
    pub(super) agent: PathBuf,
    pub(super) tasks: Tasks,
}

fn check_ssh_id(id: &str) -> Result<(), Status> {
    if id.is_empty() || id == DEFAULT_SSH_ID {
        Ok(())
    } else {
        Err(Status::not_found(format!(
            "unset ssh forward key {id}: only the default agent is forwarded"
        )))
    }
}

#[tonic::async_trait]
impl Ssh for SshService {
    async fn check_agent(
        &self,
        request: Request<CheckAgentRequest>,
    ) -> Result<Response<CheckAgentResponse>, Status> {
        check_ssh_id(&request.into_inner().id)?;
        Ok(Response::new(CheckAgentResponse {}))
    }

    type ForwardAgentStream = BoxStream<SshBytes>;

    async fn forward_agent(
        &self,
        request: Request<Streaming<SshBytes>>,
    ) -> Result<Response<Self::ForwardAgentStream>, Status> {
        let id = request
            .metadata()
            .get(SSH_ID_KEY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(DEFAULT_SSH_ID)
            .to_owned();
        check_ssh_id(&id)?;
        let agent = tokio::net::UnixStream::connect(&self.agent)
            .await
            .map_err(|e| {
                Status::unavailable(format!(
                    "cannot reach the ssh agent at {}: {e}",
                    self.agent.display()
                ))
            })?;
        let (mut agent_read, mut agent_write) = agent.into_split();
        let mut inbound = request.into_inner();
        // BuildKit → agent.
        self.tasks.spawn(async move {
            while let Ok(Some(message)) = inbound.message().await {
                if agent_write.write_all(&message.data).await.is_err() {
                    return;
                }
            }
            let _ = agent_write.shutdown().await;
        });
        // Agent → BuildKit.
        let outbound = async_stream(&self.tasks, move |tx| async move {
            let mut buf = vec![0u8; super::tunnel::CHUNK];
            loop {
                match agent_read.read(&mut buf).await {
                    Ok(0) => return,
                    Ok(n) => {
                        let message = SshBytes {
                            data: buf[..n].to_vec(),
                        };
                        if tx.send(Ok(message)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(Status::unavailable(e.to_string()))).await;
                        return;
                    }
                }
            }
        });
        Ok(Response::new(outbound))
    }
}

/// A stream fed by a spawned task through a channel.
fn async_stream<T, F, Fut>(tasks: &Tasks, produce: F) -> BoxStream<T>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<Result<T, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tasks.spawn(produce(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_default_ssh_id_is_forwarded() {
        assert!(check_ssh_id("").is_ok());
        assert!(check_ssh_id("default").is_ok());
        assert_eq!(
            check_ssh_id("github").unwrap_err().code(),
            tonic::Code::NotFound
        );
    }
}
