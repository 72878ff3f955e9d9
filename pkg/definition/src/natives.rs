//! The Jsonnet natives of a build definition: one-line forms of the directives' objects.

use brewkit_jsonnet::Native;
use serde_json::json;

/// `std.native('cache')(id, path)`: a cache mount, `{id, path}`.
pub const CACHE: Native = Native {
    name: "cache",
    params: &["id", "path"],
    build: |a| json!({"id": a[0], "path": a[1]}),
};

/// `std.native('copy')(src, dst)`: a copy from the build context, `{src, dst}`.
pub const COPY: Native = Native {
    name: "copy",
    params: &["src", "dst"],
    build: |a| json!({"src": a[0], "dst": a[1]}),
};

/// `std.native('copyFrom')(from, src, dst)`: a copy from a target or an image, `{from, src, dst}`.
pub const COPY_FROM: Native = Native {
    name: "copyFrom",
    params: &["from", "src", "dst"],
    build: |a| json!({"from": a[0], "src": a[1], "dst": a[2]}),
};

/// `std.native('secret')(id, path)`: a secret mount, `{id, path}`.
pub const SECRET: Native = Native {
    name: "secret",
    params: &["id", "path"],
    build: |a| json!({"id": a[0], "path": a[1]}),
};

/// Every native a build definition can call.
pub const ALL: [Native; 4] = [CACHE, COPY, COPY_FROM, SECRET];
