//! The connection to a BuildKit daemon and its Control API.

use std::{collections::BTreeMap, time::Duration};

use tokio::sync::mpsc::Sender;
use tonic::transport::Channel;

use crate::{
    proto::{
        moby::buildkit::v1::{
            control_client::ControlClient, types::WorkerRecord, DiskUsageRequest, InfoRequest,
            ListWorkersRequest, PruneRequest, SolveRequest as ControlSolveRequest, StatusRequest,
            UsageRecord,
        },
        pb,
    },
    status::{Event, StatusDecoder},
    transport::{Address, TlsFiles, BUILDKIT_HOST_ENV, PROBE_TIMEOUT},
    Error,
};

/// How long the status stream may keep going after its solve returned.
const STATUS_DRAIN: Duration = Duration::from_secs(5);

/// What to solve with [`Client::solve`].
#[derive(Debug, Clone, Default)]
pub struct SolveOptions {
    /// The LLB to build; `None` for a gateway build driven through [`crate::gateway`].
    pub definition: Option<pb::Definition>,
    /// The session that serves local files, secrets and exports.
    pub session: Option<String>,
    /// Export the result to the session's local export directory (FileSend).
    pub export_local: bool,
    /// Entitlements asked for, such as `network.host`.
    pub entitlements: Vec<String>,
    /// Frontend options (for a gateway build, they reach the gateway's Ping/BuildOpts).
    pub frontend_attrs: BTreeMap<String, String>,
}

/// One gRPC connection to BuildKit; cheap to clone (clones share the connection).
#[derive(Debug, Clone)]
pub struct Client {
    address: Address,
    channel: Channel,
}

impl Client {
    /// Connects to `address` (`--addr`), else `$BUILDKIT_HOST`, else the first of
    /// [`Address::candidates`] that answers. A daemon "answers" when ListWorkers succeeds.
    pub async fn connect(address: Option<&str>, tls: &TlsFiles) -> Result<Self, Error> {
        let named = match address {
            Some(a) => Some(a.to_owned()),
            None => std::env::var(BUILDKIT_HOST_ENV)
                .ok()
                .filter(|v| !v.is_empty()),
        };
        if let Some(named) = named {
            let address = Address::parse(&named)?;
            return Self::probe(address, tls).await;
        }
        let mut tried = Vec::new();
        for candidate in Address::candidates() {
            let candidate = match candidate {
                Ok(candidate) => candidate,
                Err(e) => {
                    tried.push(("docker://".to_owned(), e.to_string()));
                    continue;
                }
            };
            match Self::probe(candidate.clone(), tls).await {
                Ok(client) => return Ok(client),
                Err(Error::Connect { reason, .. }) => tried.push((candidate.to_string(), reason)),
                Err(other) => tried.push((candidate.to_string(), other.to_string())),
            }
        }
        Err(Error::NoDaemon { tried })
    }

    /// Connects to `address` and checks that BuildKit answers there.
    pub async fn probe(address: Address, tls: &TlsFiles) -> Result<Self, Error> {
        let (channel, diagnosis) = address.connect_diagnosed(tls).await?;
        let client = Self { address, channel };
        match tokio::time::timeout(PROBE_TIMEOUT, client.list_workers()).await {
            Ok(Ok(_)) => Ok(client),
            Ok(Err(e)) => Err(Error::Connect {
                address: client.address.to_string(),
                reason: crate::transport::call_reason(&e, &diagnosis),
            }),
            Err(_) => Err(Error::Connect {
                address: client.address.to_string(),
                reason: format!("no answer within {} s", PROBE_TIMEOUT.as_secs()),
            }),
        }
    }

    /// Where the daemon is.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The gRPC channel, for the other services on the same connection.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A Control API client on this connection.
    pub fn control(&self) -> ControlClient<Channel> {
        ControlClient::new(self.channel.clone())
            .max_decoding_message_size(crate::MAX_MESSAGE_SIZE)
            .max_encoding_message_size(crate::MAX_MESSAGE_SIZE)
    }

    /// The daemon's workers (platforms, labels, GC policy).
    pub async fn list_workers(&self) -> Result<Vec<WorkerRecord>, Error> {
        let response = self
            .control()
            .list_workers(ListWorkersRequest::default())
            .await
            .map_err(Error::call("ListWorkers"))?;
        Ok(response.into_inner().record)
    }

    /// The daemon's BuildKit version, when it can tell (Info exists since BuildKit v0.11; older
    /// daemons, such as Docker 20.10's, answer Unimplemented and give `None`).
    pub async fn version(&self) -> Result<Option<String>, Error> {
        match self.control().info(InfoRequest::default()).await {
            Ok(response) => Ok(response
                .into_inner()
                .buildkit_version
                .map(|v| format!("{} {}", v.package, v.version))),
            Err(status) if status.code() == tonic::Code::Unimplemented => Ok(None),
            Err(status) => Err(Error::call("Info")(status)),
        }
    }

    /// The build cache's records (those matching `filter`, BuildKit's filter syntax, if any).
    pub async fn disk_usage(&self, filter: &[String]) -> Result<Vec<UsageRecord>, Error> {
        let response = self
            .control()
            .disk_usage(DiskUsageRequest {
                filter: filter.to_vec(),
                ..DiskUsageRequest::default()
            })
            .await
            .map_err(Error::call("DiskUsage"))?;
        Ok(response.into_inner().record)
    }

    /// Removes build cache records: unused ones, or with `all` everything not in use (like
    /// `buildctl prune --all`), only those matching `filter` if any. Returns the records removed.
    pub async fn prune(&self, all: bool, filter: &[String]) -> Result<Vec<UsageRecord>, Error> {
        let mut stream = self
            .control()
            .prune(PruneRequest {
                all,
                filter: filter.to_vec(),
                ..PruneRequest::default()
            })
            .await
            .map_err(Error::call("Prune"))?
            .into_inner();
        let mut removed = Vec::new();
        while let Some(record) = stream.message().await.map_err(Error::call("Prune"))? {
            removed.push(record);
        }
        Ok(removed)
    }

    /// Solves `request` as job `id`, sending progress to `events` (a bounded channel: a slow
    /// reader holds the status stream back, never memory). Returns the exporter's response.
    /// Dropping the future cancels the job in BuildKit.
    pub async fn solve(
        &self,
        id: &str,
        request: SolveOptions,
        events: Option<Sender<Event>>,
    ) -> Result<BTreeMap<String, String>, Error> {
        // Aborted with this future (a cancelled solve) or once drained, never left behind.
        let status = events
            .map(|events| AbortOnDrop(tokio::spawn(self.clone().status(id.to_owned(), events))));
        let (exporter, exporter_attrs) = if request.export_local {
            // The single-exporter fields, which every BuildKit from v0.8 on understands.
            ("local".to_owned(), BTreeMap::new())
        } else {
            (String::new(), BTreeMap::new())
        };
        let result = self
            .control()
            .solve(ControlSolveRequest {
                r#ref: id.to_owned(),
                definition: request.definition,
                exporter_deprecated: exporter,
                exporter_attrs_deprecated: exporter_attrs,
                session: request.session.unwrap_or_default(),
                frontend_attrs: request.frontend_attrs,
                entitlements: request.entitlements,
                ..ControlSolveRequest::default()
            })
            .await
            .map_err(Error::call("Solve"));
        if let Some(mut status) = status {
            // The stream ends with the job; its last events may trail the answer a little.
            let _ = tokio::time::timeout(STATUS_DRAIN, &mut status.0).await;
        }
        Ok(result?.into_inner().exporter_response)
    }

    /// Follows job `id`'s status until it ends. A stream that fails says so, as a warning: the
    /// build goes on without progress.
    async fn status(self, id: String, events: Sender<Event>) {
        let stopped = |status: tonic::Status| Event::Warning {
            vertex: String::new(),
            message: format!("progress stopped: {}", status.message()),
        };
        let mut stream = match self.control().status(StatusRequest { r#ref: id }).await {
            Ok(response) => response.into_inner(),
            Err(status) => {
                let _ = events.send(stopped(status)).await;
                return;
            }
        };
        let mut decoder = StatusDecoder::default();
        loop {
            match stream.message().await {
                Ok(Some(status)) => {
                    for event in decoder.decode(status) {
                        if events.send(event).await.is_err() {
                            return;
                        }
                    }
                }
                Ok(None) => return,
                Err(status) => {
                    let _ = events.send(stopped(status)).await;
                    return;
                }
            }
        }
    }
}

/// A task aborted when its handle is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
