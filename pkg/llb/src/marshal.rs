//! Marshalling a graph into a `pb::Definition`: each vertex once, after its inputs, named by the
//! digest of its bytes.

use std::{collections::HashMap, sync::Arc};

use prost::Message;
use sha2::{Digest, Sha256};

use crate::{pb, state::Vertex, State};

impl State {
    /// The definition of this state's filesystem, ready for a solve. Equal graphs marshal to equal
    /// bytes.
    pub fn marshal(&self) -> pb::Definition {
        let mut definition = pb::Definition::default();
        let Some(root) = &self.output else {
            return definition;
        };
        let mut digests: HashMap<*const Vertex, String> = HashMap::new();
        let root_digest = marshal_vertex(&root.vertex, &mut digests, &mut definition);
        // The terminal op: only an input, naming the result.
        let terminal = pb::Op {
            inputs: vec![pb::Input {
                digest: root_digest,
                index: root.index,
            }],
            ..pb::Op::default()
        };
        definition.def.push(terminal.encode_to_vec());
        definition
    }
}

/// Appends `root` and every vertex it reads, each after its inputs (depth first, inputs in
/// order), to `definition` once; returns the digest of `root`.
fn marshal_vertex(
    root: &Arc<Vertex>,
    digests: &mut HashMap<*const Vertex, String>,
    definition: &mut pb::Definition,
) -> String {
    /// A vertex whose inputs are being marshalled: the digests of those done so far.
    struct Frame<'g> {
        vertex: &'g Arc<Vertex>,
        inputs: Vec<pb::Input>,
    }
    fn frame(vertex: &Arc<Vertex>) -> Frame<'_> {
        Frame {
            vertex,
            inputs: Vec::with_capacity(vertex.inputs.len()),
        }
    }

    if let Some(digest) = digests.get(&Arc::as_ptr(root)) {
        return digest.clone();
    }
    // An explicit stack rather than recursion, which overflowed the thread's stack on a chain of
    // a few thousand ops (one per copy).
    let mut stack = vec![frame(root)];
    loop {
        let top = stack
            .last_mut()
            .expect("the stack holds the root until it returns");
        let vertex: &Arc<Vertex> = top.vertex;
        if let Some(input) = vertex.inputs.get(top.inputs.len()) {
            match digests.get(&Arc::as_ptr(&input.vertex)) {
                Some(digest) => top.inputs.push(pb::Input {
                    digest: digest.clone(),
                    index: input.index,
                }),
                None => stack.push(frame(&input.vertex)),
            }
            continue;
        }
        // Every input is marshalled: this vertex's turn.
        let Frame { vertex, inputs } = stack.pop().expect("the top frame");
        let op = pb::Op {
            inputs,
            ..vertex.op.clone()
        };
        let bytes = op.encode_to_vec();
        let digest = digest(&bytes);
        // Two equal vertices built separately marshal to the same bytes: keep one op, with the
        // metadata of both, as BuildKit's client merges it.
        match definition.metadata.get_mut(&digest) {
            Some(known) => merge_metadata(known, &vertex.metadata),
            None => {
                definition.def.push(bytes);
                definition
                    .metadata
                    .insert(digest.clone(), vertex.metadata.clone());
            }
        }
        digests.insert(Arc::as_ptr(vertex), digest.clone());
        match stack.last_mut() {
            Some(reader) => {
                let index = reader.vertex.inputs[reader.inputs.len()].index;
                reader.inputs.push(pb::Input { digest, index });
            }
            None => return digest,
        }
    }
}

/// Adds `from` to `into`: either ignoring the cache ignores it, descriptions are united (the
/// later one's value wins a key), capabilities added, and what else the later one sets wins.
fn merge_metadata(into: &mut pb::OpMetadata, from: &pb::OpMetadata) {
    into.ignore_cache |= from.ignore_cache;
    into.description.extend(
        from.description
            .iter()
            .map(|(key, value)| (key.clone(), value.clone())),
    );
    into.caps.extend(
        from.caps
            .iter()
            .filter(|(_, on)| **on)
            .map(|(cap, _)| (cap.clone(), true)),
    );
    if from.export_cache.is_some() {
        into.export_cache.clone_from(&from.export_cache);
    }
    if from.progress_group.is_some() {
        into.progress_group.clone_from(&from.progress_group);
    }
    if from.linux_resources.is_some() {
        into.linux_resources.clone_from(&from.linux_resources);
    }
}

/// `sha256:<hex>` of `bytes`: how BuildKit names a vertex.
pub fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for byte in hash {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}
