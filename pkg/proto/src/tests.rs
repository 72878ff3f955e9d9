//! Tests pinning the wire facts of the generated BuildKit bindings:
//! deterministic encoding, exact bytes for a known op, gRPC method paths and
//! the field numbers that protox compiled.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::{ready, Ready};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use prost::Message;
use prost_types::{FileDescriptorProto, FileDescriptorSet};
use tonic::body::Body;
use tonic::codegen::{http, tokio_stream, Service};

use crate::fsutil::types as fsutil_types;
use crate::moby::buildkit::secrets::v1 as secrets;
use crate::moby::buildkit::v1 as control;
use crate::moby::buildkit::v1::frontend;
use crate::moby::filesync::v1 as filesync;
use crate::moby::sshforward::v1 as sshforward;
use crate::pb;

fn platform() -> pb::Platform {
    pb::Platform {
        architecture: "amd64".into(),
        os: "linux".into(),
        ..Default::default()
    }
}

fn source_op(attrs: BTreeMap<String, String>) -> pb::Op {
    pb::Op {
        op: Some(pb::op::Op::Source(pb::SourceOp {
            identifier: "docker-image://docker.io/library/alpine:3.20".into(),
            attrs,
        })),
        platform: Some(platform()),
        ..Default::default()
    }
}

fn exec_op(source_digest: &str) -> pb::Op {
    pb::Op {
        inputs: vec![pb::Input {
            digest: source_digest.into(),
            index: 0,
        }],
        op: Some(pb::op::Op::Exec(pb::ExecOp {
            meta: Some(pb::Meta {
                args: vec!["/bin/sh".into(), "-c".into(), "echo hi > /out".into()],
                env: vec!["PATH=/usr/local/bin:/usr/bin:/bin".into()],
                cwd: "/".into(),
                ..Default::default()
            }),
            mounts: vec![
                pb::Mount {
                    input: 0,
                    dest: "/".into(),
                    output: 0,
                    ..Default::default()
                },
                pb::Mount {
                    input: -1,
                    dest: "/root/.cache".into(),
                    output: -1,
                    mount_type: pb::MountType::Cache as i32,
                    cache_opt: Some(pb::CacheOpt {
                        id: "brewkit-cache".into(),
                        sharing: pb::CacheSharingOpt::Locked as i32,
                    }),
                    ..Default::default()
                },
            ],
            network: pb::NetMode::None as i32,
            ..Default::default()
        })),
        platform: Some(platform()),
        ..Default::default()
    }
}

fn definition(attrs: BTreeMap<String, String>) -> pb::Definition {
    let source = source_op(attrs).encode_to_vec();
    // A stand-in digest: the real one is sha256 of `source`, computed by
    // the LLB layer, which is not part of this crate's tests.
    let source_digest = "sha256:0000000000000000000000000000000000000000000000000000000000000001";
    let exec = exec_op(source_digest).encode_to_vec();

    let mut metadata = BTreeMap::new();
    for (key, name) in [
        (source_digest, "load alpine"),
        ("sha256:02", "run"),
        ("sha256:01", "first"),
    ] {
        metadata.insert(
            key.to_string(),
            pb::OpMetadata {
                description: BTreeMap::from([("llb.customname".to_string(), name.to_string())]),
                caps: BTreeMap::from([("exec.meta.base".to_string(), true)]),
                ..Default::default()
            },
        );
    }
    pb::Definition {
        def: vec![source, exec],
        metadata,
        source: None,
    }
}

#[test]
fn definition_round_trips_and_encodes_stably() {
    let attrs = BTreeMap::from([("image.recordtype".to_string(), "internal".to_string())]);
    let def = definition(attrs.clone());
    let first = def.encode_to_vec();
    let second = definition(attrs).encode_to_vec();
    assert_eq!(first, second, "two encodings of the same graph differ");
    assert_eq!(first, def.clone().encode_to_vec());

    let decoded = pb::Definition::decode(first.as_slice()).expect("decode definition");
    assert_eq!(decoded, def);
    assert_eq!(decoded.encode_to_vec(), first, "re-encoding changed bytes");

    let ops: Vec<pb::Op> = decoded
        .def
        .iter()
        .map(|bytes| pb::Op::decode(bytes.as_slice()).expect("decode op"))
        .collect();
    match &ops[0].op {
        Some(pb::op::Op::Source(src)) => {
            assert_eq!(
                src.identifier,
                "docker-image://docker.io/library/alpine:3.20"
            );
            assert_eq!(src.attrs["image.recordtype"], "internal");
        }
        other => panic!("expected a source op, got {other:?}"),
    }
    match &ops[1].op {
        Some(pb::op::Op::Exec(exec)) => {
            assert_eq!(exec.mounts.len(), 2);
            assert_eq!(exec.mounts[1].mount_type(), pb::MountType::Cache);
            assert_eq!(exec.network(), pb::NetMode::None);
            assert_eq!(
                exec.mounts[1].cache_opt.as_ref().unwrap().sharing(),
                pb::CacheSharingOpt::Locked
            );
        }
        other => panic!("expected an exec op, got {other:?}"),
    }
    assert_eq!(ops[1].inputs[0].index, 0);
}

#[test]
fn map_fields_encode_sorted_by_key() {
    // Map fields are generated as BTreeMap (a HashMap would be a compile error here)...
    let attrs_of: fn(&pb::SourceOp) -> &BTreeMap<String, String> = |op| &op.attrs;
    let pairs = [
        ("image.resolvemode", "pull"),
        ("image.layerlimit", "3"),
        ("a", "first-by-sort"),
    ];
    let op = pb::SourceOp {
        identifier: String::new(),
        attrs: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    assert_eq!(attrs_of(&op).len(), 3);
    // ...so the entries go out sorted by key, whatever the insertion order: field 2, each entry
    // a message {1: key, 2: value}.
    let mut sorted = pairs.to_vec();
    sorted.sort();
    let mut expected = Vec::new();
    for (k, v) in sorted {
        let entry_len = 2 + k.len() + 2 + v.len();
        expected.extend([0x12, entry_len as u8, 0x0a, k.len() as u8]);
        expected.extend(k.bytes());
        expected.extend([0x12, v.len() as u8]);
        expected.extend(v.bytes());
    }
    assert_eq!(op.encode_to_vec(), expected);
}

#[test]
fn source_op_golden_bytes() {
    // Hand-assembled protobuf encoding, fields in tag order as Go's
    // marshaller also emits them: Op.source (3) before Op.platform (10),
    // map entries sorted by key.
    let op = pb::Op {
        op: Some(pb::op::Op::Source(pb::SourceOp {
            identifier: "local://ctx".into(),
            attrs: BTreeMap::from([
                ("b".to_string(), "2".to_string()),
                ("a".to_string(), "1".to_string()),
            ]),
        })),
        platform: Some(platform()),
        ..Default::default()
    };
    let mut want = vec![0x1a, 29, 0x0a, 11];
    want.extend_from_slice(b"local://ctx");
    want.extend_from_slice(&[0x12, 6, 0x0a, 1, b'a', 0x12, 1, b'1']);
    want.extend_from_slice(&[0x12, 6, 0x0a, 1, b'b', 0x12, 1, b'2']);
    want.extend_from_slice(&[0x52, 14, 0x0a, 5]);
    want.extend_from_slice(b"amd64");
    want.extend_from_slice(&[0x12, 5]);
    want.extend_from_slice(b"linux");
    assert_eq!(op.encode_to_vec(), want);
}

#[test]
fn negative_mount_indexes_use_varint_int64() {
    // pb.Mount.input/output are int64: -1 must be a 10-byte varint.
    let mount = pb::Mount {
        input: -1,
        output: -1,
        ..Default::default()
    };
    let mut want = vec![0x08];
    want.extend_from_slice(&[0xff; 9]);
    want.push(0x01);
    want.push(0x20);
    want.extend_from_slice(&[0xff; 9]);
    want.push(0x01);
    assert_eq!(mount.encode_to_vec(), want);
}

#[test]
fn fsutil_packet_encoding() {
    let packet = fsutil_types::Packet {
        r#type: fsutil_types::packet::PacketType::PacketData as i32,
        stat: None,
        id: 7,
        data: b"xy".to_vec(),
    };
    assert_eq!(
        packet.encode_to_vec(),
        vec![0x08, 2, 0x18, 7, 0x22, 2, b'x', b'y']
    );
    let stat = fsutil_types::Packet {
        r#type: fsutil_types::packet::PacketType::PacketStat as i32,
        stat: Some(fsutil_types::Stat {
            path: "a".into(),
            mode: 0o644,
            ..Default::default()
        }),
        ..Default::default()
    };
    let decoded = fsutil_types::Packet::decode(stat.encode_to_vec().as_slice()).unwrap();
    assert_eq!(decoded, stat);
    assert_eq!(
        fsutil_types::packet::PacketType::PacketFin.as_str_name(),
        "PACKET_FIN"
    );
}

// ---------------------------------------------------------------------------
// gRPC method paths, observed on the requests the generated clients send.

/// A transport stand-in that records request paths and answers every call
/// with a trailers-only `UNIMPLEMENTED` response.
#[derive(Clone, Default)]
struct Recorder {
    paths: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.paths.lock().unwrap())
    }
}

impl Service<http::Request<Body>> for Recorder {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        self.paths
            .lock()
            .unwrap()
            .push(req.uri().path().to_string());
        let response = http::Response::builder()
            .status(200)
            .header("content-type", "application/grpc")
            .header("grpc-status", "12")
            .body(Body::empty())
            .unwrap();
        ready(Ok(response))
    }
}

fn one<T: Send + 'static>(msg: T) -> tokio_stream::Iter<std::vec::IntoIter<T>> {
    tokio_stream::iter(vec![msg])
}

/// The call went through the recorder and its grpc-status was read: UNIMPLEMENTED (12).
fn unimplemented<T: std::fmt::Debug>(result: Result<T, tonic::Status>) {
    match result {
        Err(status) => assert_eq!(status.code(), tonic::Code::Unimplemented, "{status:?}"),
        Ok(answer) => panic!("an answer from the recorder: {answer:?}"),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn client_method_paths_are_the_wire_ones() {
    let rec = Recorder::default();

    let mut c = control::control_client::ControlClient::new(rec.clone());
    unimplemented(c.solve(control::SolveRequest::default()).await);
    unimplemented(c.status(control::StatusRequest::default()).await);
    unimplemented(c.session(one(control::BytesMessage::default())).await);
    unimplemented(c.list_workers(control::ListWorkersRequest::default()).await);
    unimplemented(c.disk_usage(control::DiskUsageRequest::default()).await);
    unimplemented(c.prune(control::PruneRequest::default()).await);
    unimplemented(c.info(control::InfoRequest::default()).await);
    assert_eq!(
        rec.take(),
        [
            "/moby.buildkit.v1.Control/Solve",
            "/moby.buildkit.v1.Control/Status",
            "/moby.buildkit.v1.Control/Session",
            "/moby.buildkit.v1.Control/ListWorkers",
            "/moby.buildkit.v1.Control/DiskUsage",
            "/moby.buildkit.v1.Control/Prune",
            "/moby.buildkit.v1.Control/Info",
        ]
    );

    let mut g = frontend::llb_bridge_client::LlbBridgeClient::new(rec.clone());
    unimplemented(
        g.resolve_image_config(frontend::ResolveImageConfigRequest::default())
            .await,
    );
    unimplemented(g.solve(frontend::SolveRequest::default()).await);
    unimplemented(g.read_file(frontend::ReadFileRequest::default()).await);
    unimplemented(g.read_dir(frontend::ReadDirRequest::default()).await);
    unimplemented(g.stat_file(frontend::StatFileRequest::default()).await);
    unimplemented(g.ping(frontend::PingRequest::default()).await);
    unimplemented(g.r#return(frontend::ReturnRequest::default()).await);
    assert_eq!(
        rec.take(),
        [
            "/moby.buildkit.v1.frontend.LLBBridge/ResolveImageConfig",
            "/moby.buildkit.v1.frontend.LLBBridge/Solve",
            "/moby.buildkit.v1.frontend.LLBBridge/ReadFile",
            "/moby.buildkit.v1.frontend.LLBBridge/ReadDir",
            "/moby.buildkit.v1.frontend.LLBBridge/StatFile",
            "/moby.buildkit.v1.frontend.LLBBridge/Ping",
            "/moby.buildkit.v1.frontend.LLBBridge/Return",
        ]
    );

    let mut fs = filesync::file_sync_client::FileSyncClient::new(rec.clone());
    unimplemented(fs.diff_copy(one(fsutil_types::Packet::default())).await);
    unimplemented(fs.tar_stream(one(fsutil_types::Packet::default())).await);
    let mut send = filesync::file_send_client::FileSendClient::new(rec.clone());
    unimplemented(send.diff_copy(one(fsutil_types::Packet::default())).await);
    let mut auth = filesync::auth_client::AuthClient::new(rec.clone());
    unimplemented(
        auth.credentials(filesync::CredentialsRequest::default())
            .await,
    );
    unimplemented(
        auth.fetch_token(filesync::FetchTokenRequest::default())
            .await,
    );
    unimplemented(
        auth.get_token_authority(filesync::GetTokenAuthorityRequest::default())
            .await,
    );
    unimplemented(
        auth.verify_token_authority(filesync::VerifyTokenAuthorityRequest::default())
            .await,
    );
    let mut sec = secrets::secrets_client::SecretsClient::new(rec.clone());
    unimplemented(sec.get_secret(secrets::GetSecretRequest::default()).await);
    let mut ssh = sshforward::ssh_client::SshClient::new(rec.clone());
    unimplemented(
        ssh.check_agent(sshforward::CheckAgentRequest::default())
            .await,
    );
    unimplemented(
        ssh.forward_agent(one(sshforward::BytesMessage::default()))
            .await,
    );
    assert_eq!(
        rec.take(),
        [
            "/moby.filesync.v1.FileSync/DiffCopy",
            "/moby.filesync.v1.FileSync/TarStream",
            "/moby.filesync.v1.FileSend/DiffCopy",
            "/moby.filesync.v1.Auth/Credentials",
            "/moby.filesync.v1.Auth/FetchToken",
            "/moby.filesync.v1.Auth/GetTokenAuthority",
            "/moby.filesync.v1.Auth/VerifyTokenAuthority",
            "/moby.buildkit.secrets.v1.Secrets/GetSecret",
            "/moby.sshforward.v1.SSH/CheckAgent",
            "/moby.sshforward.v1.SSH/ForwardAgent",
        ]
    );
}

#[test]
fn server_service_names_are_the_wire_ones() {
    use crate::moby::buildkit::v1::control_server;
    use crate::moby::buildkit::v1::frontend::llb_bridge_server;

    assert_eq!(control_server::SERVICE_NAME, "moby.buildkit.v1.Control");
    assert_eq!(
        llb_bridge_server::SERVICE_NAME,
        "moby.buildkit.v1.frontend.LLBBridge"
    );
    assert_eq!(
        filesync::file_sync_server::SERVICE_NAME,
        "moby.filesync.v1.FileSync"
    );
    assert_eq!(
        filesync::file_send_server::SERVICE_NAME,
        "moby.filesync.v1.FileSend"
    );
    assert_eq!(filesync::auth_server::SERVICE_NAME, "moby.filesync.v1.Auth");
    assert_eq!(
        secrets::secrets_server::SERVICE_NAME,
        "moby.buildkit.secrets.v1.Secrets"
    );
    assert_eq!(
        sshforward::ssh_server::SERVICE_NAME,
        "moby.sshforward.v1.SSH"
    );
}

// ---------------------------------------------------------------------------
// Field numbers and service shapes, read back from protox's descriptor set.

fn descriptors() -> FileDescriptorSet {
    FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET).expect("descriptor set")
}

fn file_of<'a>(set: &'a FileDescriptorSet, package: &str) -> Vec<&'a FileDescriptorProto> {
    set.file.iter().filter(|f| f.package() == package).collect()
}

/// Field number of `package.Message.field` (a `.`-separated path of nested
/// message names is accepted, e.g. `Packet`).
fn field_number(set: &FileDescriptorSet, package: &str, message: &str, field: &str) -> i32 {
    let msg = file_of(set, package)
        .into_iter()
        .flat_map(|f| f.message_type.iter())
        .find(|m| m.name() == message)
        .unwrap_or_else(|| panic!("no message {package}.{message}"));
    msg.field
        .iter()
        .find(|f| f.name() == field)
        .unwrap_or_else(|| panic!("no field {package}.{message}.{field}"))
        .number()
}

fn methods(set: &FileDescriptorSet, package: &str, service: &str) -> Vec<(String, bool, bool)> {
    let svc = file_of(set, package)
        .into_iter()
        .flat_map(|f| f.service.iter())
        .find(|s| s.name() == service)
        .unwrap_or_else(|| panic!("no service {package}.{service}"));
    svc.method
        .iter()
        .map(|m| {
            (
                m.name().to_string(),
                m.client_streaming(),
                m.server_streaming(),
            )
        })
        .collect()
}

#[test]
fn critical_field_numbers() {
    let set = descriptors();
    let cases: &[(&str, &str, &str, i32)] = &[
        ("pb", "Op", "inputs", 1),
        ("pb", "Op", "exec", 2),
        ("pb", "Op", "source", 3),
        ("pb", "Op", "file", 4),
        ("pb", "Op", "merge", 6),
        ("pb", "Op", "diff", 7),
        ("pb", "Op", "platform", 10),
        ("pb", "Op", "constraints", 11),
        ("pb", "Definition", "def", 1),
        ("pb", "Definition", "metadata", 2),
        ("pb", "Definition", "Source", 3),
        ("pb", "Meta", "ulimit", 9),
        ("pb", "Mount", "TmpfsOpt", 19),
        ("pb", "Mount", "cacheOpt", 20),
        ("pb", "Mount", "secretOpt", 21),
        ("pb", "Mount", "SSHOpt", 22),
        ("pb", "FileOp", "actions", 2),
        ("pb", "FileAction", "copy", 4),
        ("pb", "FileAction", "symlink", 8),
        ("pb", "OpMetadata", "export_cache", 4),
        ("pb", "OpMetadata", "caps", 5),
        ("fsutil.types", "Packet", "type", 1),
        ("fsutil.types", "Packet", "stat", 2),
        ("fsutil.types", "Packet", "ID", 3),
        ("fsutil.types", "Packet", "data", 4),
        ("fsutil.types", "Stat", "linkname", 7),
        ("fsutil.types", "Stat", "xattrs", 10),
        ("moby.buildkit.v1", "SolveRequest", "Definition", 2),
        ("moby.buildkit.v1", "SolveRequest", "ExporterDeprecated", 3),
        (
            "moby.buildkit.v1",
            "SolveRequest",
            "ExporterAttrsDeprecated",
            4,
        ),
        ("moby.buildkit.v1", "SolveRequest", "Session", 5),
        ("moby.buildkit.v1", "SolveRequest", "Exporters", 13),
        ("moby.buildkit.v1", "StatusResponse", "warnings", 4),
        ("moby.buildkit.v1.frontend", "Result", "refs", 4),
        ("moby.buildkit.v1.frontend", "Result", "metadata", 10),
        ("moby.buildkit.v1.frontend", "SolveRequest", "Final", 10),
        ("moby.buildkit.v1.frontend", "SolveResponse", "result", 3),
        ("moby.buildkit.v1.types", "GCPolicy", "reservedSpace", 3),
        ("moby.buildkit.v1.types", "GCPolicy", "filters", 4),
        ("google.rpc", "Status", "details", 3),
    ];
    for &(package, message, field, number) in cases {
        assert_eq!(
            field_number(&set, package, message, field),
            number,
            "{package}.{message}.{field}"
        );
    }
}

#[test]
fn service_shapes() {
    let set = descriptors();
    let m = |name: &str, cs: bool, ss: bool| (name.to_string(), cs, ss);
    assert_eq!(
        methods(&set, "moby.buildkit.v1", "Control"),
        [
            m("DiskUsage", false, false),
            m("Prune", false, true),
            m("Solve", false, false),
            m("Status", false, true),
            m("Session", true, true),
            m("ListWorkers", false, false),
            m("Info", false, false),
        ]
    );
    assert_eq!(
        methods(&set, "moby.filesync.v1", "FileSync"),
        [m("DiffCopy", true, true), m("TarStream", true, true)]
    );
    assert_eq!(
        methods(&set, "moby.sshforward.v1", "SSH"),
        [m("CheckAgent", false, false), m("ForwardAgent", true, true)]
    );
    assert_eq!(
        methods(&set, "moby.buildkit.secrets.v1", "Secrets"),
        [m("GetSecret", false, false)]
    );
}
