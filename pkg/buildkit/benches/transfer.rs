//! Benchmark (docs/performance.md): context upload and local export throughput against the test backend.
//!
//! `eval "$(scripts/backend up)" && cargo bench -p brewkit-buildkit --bench transfer` prints a
//! table. Not a test: nothing passes or fails on time.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use brewkit_buildkit::{
    new_id, transport::TlsFiles, Client, Session, SessionOptions, SolveOptions,
};

const FILES: usize = 5_000;
const TOTAL_BYTES: usize = 100 * 1024 * 1024;
const RUNS: usize = 3;

fn make_context(root: &Path) {
    let size = TOTAL_BYTES / FILES;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for i in 0..FILES {
        let dir = root.join(format!("d{:02}", i % 50));
        std::fs::create_dir_all(&dir).expect("creating a directory of the context");
        // Incompressible content, so that nothing on the way can shortcut it.
        let data: Vec<u8> = (0..size)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        std::fs::write(dir.join(format!("f{i:05}.bin")), data)
            .expect("writing a file of the context");
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn mb_per_s(bytes: usize, time: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / time.as_secs_f64()
}

async fn upload(client: &Client, context: &Path) -> Duration {
    // A fresh directory name and shared key each time: BuildKit has nothing to reuse.
    let name = format!("ctx-{}", new_id());
    let session = Session::start(
        client,
        SessionOptions {
            name: "bench".into(),
            shared_key: new_id(),
            dirs: [(name.clone(), context.to_owned())].into(),
            ..Default::default()
        },
    )
    .await
    .expect("the backend accepts a session");
    let source = brewkit_llb::State::local(
        &name,
        &brewkit_llb::LocalOptions {
            session_id: Some(session.id().to_owned()),
            ..Default::default()
        },
    );
    let start = Instant::now();
    let result = client
        .solve(
            &new_id(),
            SolveOptions {
                definition: Some(source.marshal()),
                session: Some(session.id().to_owned()),
                ..Default::default()
            },
            None,
        )
        .await;
    let took = start.elapsed();
    if let Err(e) = result {
        let transfers = session.transfers().await;
        panic!("upload failed after {took:?}: {e}; transfers: {transfers:?}");
    }
    session.close().await;
    took
}

async fn export(client: &Client, state: &brewkit_llb::State) -> Duration {
    let dest = tempfile::tempdir().expect("a temporary export directory");
    let session = Session::start(
        client,
        SessionOptions {
            name: "bench".into(),
            exports: vec![dest.path().to_owned()],
            ..Default::default()
        },
    )
    .await
    .expect("the backend accepts a session");
    let start = Instant::now();
    client
        .solve(
            &new_id(),
            SolveOptions {
                definition: Some(state.marshal()),
                session: Some(session.id().to_owned()),
                export_local: true,
                ..Default::default()
            },
            None,
        )
        .await
        .expect("the export solve succeeds");
    let took = start.elapsed();
    session.close().await;
    took
}

#[tokio::main]
async fn main() {
    let host = std::env::var("BREWKIT_TEST_DOCKER_HOST")
        .expect("BREWKIT_TEST_DOCKER_HOST is not set: eval \"$(scripts/backend up)\" first");
    let client = Client::connect(Some(&format!("docker://{host}")), &TlsFiles::default())
        .await
        .expect("the backend answers");

    let context = tempfile::tempdir().expect("a temporary context directory");
    make_context(context.path());

    let mut tar = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "tar -cf - -C {} . | wc -c > /dev/null",
                context.path().display()
            ))
            .status()
            .expect("sh runs");
        assert!(status.success());
        tar.push(start.elapsed());
    }
    let mut uploads = Vec::new();
    for _ in 0..RUNS {
        uploads.push(upload(&client, context.path()).await);
    }

    // A 100 MB artifact made by a run; solved once so that the timed solves only export it.
    let artifact = brewkit_llb::State::image(
        "docker.io/library/busybox:latest",
        brewkit_llb::ResolveMode::Default,
        None,
    )
    .run(brewkit_llb::RunOptions {
        args: vec![
            "/bin/sh".into(),
            "-c".into(),
            format!(
                "head -c {TOTAL_BYTES} /dev/urandom > /out/artifact.bin # {}",
                new_id()
            ),
        ],
        mounts: vec![brewkit_llb::Mount::Writable {
            dest: "/out".into(),
            state: brewkit_llb::State::scratch(),
        }],
        ..Default::default()
    })
    .output("/out")
    .expect("/out is a writable mount of the run above");
    client
        .solve(
            &new_id(),
            SolveOptions {
                definition: Some(artifact.marshal()),
                ..Default::default()
            },
            None,
        )
        .await
        .expect("the artifact solve succeeds");
    let mut exports = Vec::new();
    for _ in 0..RUNS {
        exports.push(export(&client, &artifact).await);
    }

    let tar = median(tar);
    let upload = median(uploads);
    let export = median(exports);
    println!(
        "context: {FILES} files, {} MB; artifact: 1 file, {} MB; median of {RUNS} runs",
        TOTAL_BYTES >> 20,
        TOTAL_BYTES >> 20
    );
    println!("| what                         | time     | MB/s    | files/s  |");
    println!("|------------------------------|----------|---------|----------|");
    println!(
        "| read from disk (tar | wc -c) | {:>6.2} s | {:>7.1} | {:>8.0} |",
        tar.as_secs_f64(),
        mb_per_s(TOTAL_BYTES, tar),
        FILES as f64 / tar.as_secs_f64()
    );
    println!(
        "| context upload (FileSync)    | {:>6.2} s | {:>7.1} | {:>8.0} |",
        upload.as_secs_f64(),
        mb_per_s(TOTAL_BYTES, upload),
        FILES as f64 / upload.as_secs_f64()
    );
    println!(
        "| local export (FileSend)      | {:>6.2} s | {:>7.1} |          |",
        export.as_secs_f64(),
        mb_per_s(TOTAL_BYTES, export)
    );
}
