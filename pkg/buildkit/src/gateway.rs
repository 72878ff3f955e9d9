//! A gateway build: a `Control.Solve` without a definition, during which we drive BuildKit through
//! the LLBBridge API (every call carrying the build id): resolve image configs, solve definitions
//! to refs and read files from them. It ends with `Return`.

use std::{collections::BTreeMap, time::Duration};

use brewkit_llb::ResolveMode;
use serde::Deserialize;
use tokio::{sync::mpsc::Sender, task::JoinHandle};
use tonic::{
    metadata::AsciiMetadataValue, service::interceptor::InterceptedService, transport::Channel,
    Request, Status,
};

use crate::{
    new_id,
    proto::{
        moby::buildkit::v1::frontend::{
            llb_bridge_client::LlbBridgeClient, result, PingRequest, ReadFileRequest,
            ResolveImageConfigRequest, Result as GatewayResult, ReturnRequest, SolveRequest,
        },
        pb,
    },
    status::Event,
    Client, Error, SolveOptions,
};

/// Metadata key naming the build a gateway call belongs to.
const BUILD_ID_KEY: &str = "buildkit-controlapi-buildid";
/// How long the daemon may take to register the build before gateway calls reach it.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);

type Bridge = LlbBridgeClient<InterceptedService<Channel, BuildId>>;

/// Adds the build id to every call.
#[derive(Clone)]
pub struct BuildId(AsciiMetadataValue);

impl tonic::service::Interceptor for BuildId {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request.metadata_mut().insert(BUILD_ID_KEY, self.0.clone());
        Ok(request)
    }
}

/// The parts of an OCI image config that a run inherits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ImageRunConfig {
    /// `Env`: `NAME=value` entries in the image's order; empty if the image sets none.
    #[serde(rename = "Env", default)]
    pub env: Vec<String>,
    /// `User`: a name or uid, optionally `:group`; empty means the image runs as root.
    #[serde(rename = "User", default)]
    pub user: String,
    /// `WorkingDir`: an absolute path; empty means `/`.
    #[serde(rename = "WorkingDir", default)]
    pub working_dir: String,
}

#[derive(Deserialize)]
struct ImageConfigFile {
    #[serde(default)]
    config: Option<ImageRunConfig>,
}

/// A resolved image: the digest it is pinned to and its run config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The digest the registry resolved the reference to (`sha256:…`; an image index's for a
    /// multi-platform image), to pin the image with as `name@digest`.
    pub digest: String,
    /// The image's run config; the default (all empty) if its config has no `config` section.
    pub config: ImageRunConfig,
}

/// The progress name of resolving `reference`; BuildKit names that progress vertex by the
/// digest of this text.
pub fn resolve_log_name(reference: &str, platform: Option<&pb::Platform>) -> String {
    let name = format!("resolve image config for {reference}");
    // Two platforms of one image are two steps: their names must differ.
    match platform {
        Some(p) if p.variant.is_empty() => format!("{name} ({}/{})", p.os, p.architecture),
        Some(p) => format!("{name} ({}/{}/{})", p.os, p.architecture, p.variant),
        None => name,
    }
}

/// A running gateway build. Dropping it cancels the build.
pub struct Gateway {
    bridge: Bridge,
    solve: Option<JoinHandle<Result<BTreeMap<String, String>, Error>>>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(solve) = self.solve.take() {
            solve.abort();
        }
    }
}

impl Client {
    /// Starts a gateway build on `session` (for local sources and secrets of the runs it solves),
    /// granted `entitlements` (such as `network.host`) for every solve in it.
    pub async fn gateway(
        &self,
        session: Option<String>,
        entitlements: Vec<String>,
        events: Option<Sender<Event>>,
    ) -> Result<Gateway, Error> {
        let id = new_id();
        let build_id = BuildId(AsciiMetadataValue::try_from(id.as_str()).expect("ids are hex"));
        let bridge = LlbBridgeClient::with_interceptor(self.channel(), build_id)
            .max_decoding_message_size(crate::MAX_MESSAGE_SIZE)
            .max_encoding_message_size(crate::MAX_MESSAGE_SIZE);
        let client = self.clone();
        let solve_id = id.clone();
        let solve = tokio::spawn(async move {
            client
                .solve(
                    &solve_id,
                    SolveOptions {
                        session,
                        entitlements,
                        ..SolveOptions::default()
                    },
                    events,
                )
                .await
        });
        let mut gateway = Gateway {
            bridge,
            solve: Some(solve),
        };
        gateway.wait_registered().await?;
        Ok(gateway)
    }
}

impl Gateway {
    /// Pings until the daemon knows the build (its Solve may arrive after our first call).
    async fn wait_registered(&mut self) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + REGISTER_TIMEOUT;
        loop {
            match self.bridge.ping(PingRequest {}).await {
                Ok(_) => return Ok(()),
                Err(status) if tokio::time::Instant::now() < deadline => {
                    if self.solve.as_ref().is_some_and(JoinHandle::is_finished) {
                        return Err(self.ended(status).await);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(status) => return Err(Error::call("gateway Ping")(status)),
            }
        }
    }

    /// The error of a build whose Solve ended early, or `status`.
    async fn ended(&mut self, status: Status) -> Error {
        match self.solve.take() {
            Some(solve) => match solve.await {
                Ok(Err(e)) => e,
                _ => Error::call("gateway Ping")(status),
            },
            None => Error::call("gateway Ping")(status),
        }
    }

    /// Resolves `reference` (fully qualified) to its digest and run config.
    pub async fn resolve_image_config(
        &self,
        reference: &str,
        platform: Option<pb::Platform>,
        mode: ResolveMode,
    ) -> Result<ResolvedImage, Error> {
        let response = self
            .bridge
            .clone()
            .resolve_image_config(ResolveImageConfigRequest {
                r#ref: reference.to_owned(),
                platform: platform.clone(),
                resolve_mode: mode.as_str().to_owned(),
                log_name: resolve_log_name(reference, platform.as_ref()),
                ..ResolveImageConfigRequest::default()
            })
            .await
            .map_err(Error::call("ResolveImageConfig"))?
            .into_inner();
        let file: ImageConfigFile =
            serde_json::from_slice(&response.config).map_err(|source| Error::ImageConfig {
                reference: reference.to_owned(),
                source,
            })?;
        Ok(ResolvedImage {
            digest: response.digest,
            config: file.config.unwrap_or_default(),
        })
    }

    /// Solves `definition` now and returns a ref to its result.
    pub async fn solve(&self, definition: pb::Definition) -> Result<String, Error> {
        let response = self
            .bridge
            .clone()
            .solve(SolveRequest {
                definition: Some(definition),
                allow_result_return: true,
                allow_result_array_ref: true,
                evaluate: true,
                ..SolveRequest::default()
            })
            .await
            .map_err(Error::call("gateway Solve"))?
            .into_inner();
        let from_result = response.result.and_then(|r| match r.result {
            Some(result::Result::Ref(reference)) => Some(reference.id),
            Some(result::Result::RefDeprecated(id)) => Some(id),
            _ => None,
        });
        match from_result {
            Some(id) => Ok(id),
            None if !response.r#ref.is_empty() => Ok(response.r#ref),
            None => Err(Error::Protocol {
                call: "gateway Solve",
                what: "the answer holds no result ref".into(),
            }),
        }
    }

    /// Reads the file at `path` in the result `reference`.
    pub async fn read_file(&self, reference: &str, path: &str) -> Result<Vec<u8>, Error> {
        let response = self
            .bridge
            .clone()
            .read_file(ReadFileRequest {
                r#ref: reference.to_owned(),
                file_path: path.to_owned(),
                ..ReadFileRequest::default()
            })
            .await
            .map_err(Error::call("ReadFile"))?;
        Ok(response.into_inner().data)
    }

    /// Ends the build with an empty result and waits for its Solve.
    pub async fn finish(mut self) -> Result<(), Error> {
        self.bridge
            .r#return(ReturnRequest {
                result: Some(GatewayResult::default()),
                error: None,
            })
            .await
            .map_err(Error::call("Return"))?;
        match self.solve.take() {
            Some(solve) => match solve.await {
                Ok(result) => result.map(|_| ()),
                Err(e) => Err(Error::internal(
                    "the gateway build's task ended",
                    Some(e.into()),
                )),
            },
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_config_run_fields() {
        let file: ImageConfigFile = serde_json::from_str(
            r#"{"architecture":"amd64","config":{"Env":["PATH=/usr/bin"],"User":"app","WorkingDir":"/srv","Cmd":["sh"]}}"#,
        )
        .unwrap();
        assert_eq!(
            file.config.unwrap(),
            ImageRunConfig {
                env: vec!["PATH=/usr/bin".into()],
                user: "app".into(),
                working_dir: "/srv".into()
            }
        );
        let empty: ImageConfigFile = serde_json::from_str(r#"{"rootfs":{}}"#).unwrap();
        assert!(empty.config.is_none());
    }
}
