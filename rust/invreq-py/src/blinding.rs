//! `invreq_core::blinding`: blinded paths (BOLT 4 route blinding) and their hops.

use invreq_core::blinding::{self, IntroductionNode};
use invreq_core::read::Check;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::convert::{arr, bytes, check, hex};
use crate::error::{core, invalid_field};

/// Paths read by the core, as the Python class.
pub(crate) fn typed_paths(p: Option<&[blinding::BlindedPath]>) -> Option<Vec<BlindedPath>> {
    p.map(|p| p.iter().cloned().map(BlindedPath).collect())
}

/// One hop of a blinded path.
#[pyclass(frozen, eq, module = "invreq._core")]
#[derive(Clone, PartialEq)]
pub(crate) struct BlindedHop(blinding::BlindedHop);

pyclass_methods! {
    BlindedHop(h) {
        blinded_node_id: &[u8] = &h.blinded_node_id;
        encrypted_recipient_data: &[u8] = &h.encrypted_recipient_data;
        methods {
            #[new]
            #[pyo3(signature = (blinded_node_id, encrypted_recipient_data))]
            fn new(blinded_node_id: &[u8], encrypted_recipient_data: Vec<u8>) -> PyResult<Self> {
                let blinded_node_id = arr("blinded_node_id", blinded_node_id)?;
                Ok(Self(blinding::BlindedHop { blinded_node_id, encrypted_recipient_data }))
            }
            fn __repr__(&self) -> String {
                format!(
                    "BlindedHop(blinded_node_id={}, encrypted_recipient_data={} bytes)",
                    hex(&self.0.blinded_node_id),
                    self.0.encrypted_recipient_data.len()
                )
            }
        }
    }
}

/// A blinded path: entered at a node id, or at one end (`first_scid_dir`) of a channel
/// (`first_scid`), with its first path key and its hops.
#[pyclass(frozen, eq, module = "invreq._core")]
#[derive(Clone, PartialEq)]
pub(crate) struct BlindedPath(pub(crate) blinding::BlindedPath);

pyclass_methods! {
    BlindedPath(p) {
        first_node_id: Option<&[u8]> = match &p.first_node {
            IntroductionNode::NodeId(n) => Some(&n[..]),
            IntroductionNode::Sciddir { .. } => None,
        };
        /// The short channel id as a u64 (block << 40 | tx << 16 | output).
        first_scid: Option<u64> = match p.first_node {
            IntroductionNode::Sciddir { scid, .. } => Some(scid),
            IntroductionNode::NodeId(_) => None,
        };
        first_scid_dir: Option<u8> = match p.first_node {
            IntroductionNode::Sciddir { direction, .. } => Some(direction),
            IntroductionNode::NodeId(_) => None,
        };
        first_path_key: &[u8] = &p.first_path_key;
        hops: Vec<BlindedHop> = p.hops.iter().cloned().map(BlindedHop).collect();
        methods {
            #[new]
            #[pyo3(signature = (*, first_path_key, hops, first_node_id=None, first_scid=None, first_scid_dir=None))]
            fn new(
                first_path_key: &[u8],
                hops: Vec<BlindedHop>,
                first_node_id: Option<&[u8]>,
                first_scid: Option<u64>,
                first_scid_dir: Option<u8>,
            ) -> PyResult<Self> {
                let first_node = match (first_node_id, first_scid, first_scid_dir) {
                    (Some(n), None, None) => IntroductionNode::NodeId(arr("first_node_id", n)?),
                    (None, Some(scid), Some(direction)) => {
                        IntroductionNode::Sciddir { direction, scid }
                    }
                    _ => {
                        return Err(invalid_field(
                            "first_node_id",
                            "give first_node_id, or first_scid with first_scid_dir",
                        )
                        .into())
                    }
                };
                let path = blinding::BlindedPath {
                    first_node,
                    first_path_key: arr("first_path_key", first_path_key)?,
                    hops: hops.into_iter().map(|h| h.0).collect(),
                };
                // Only what encodes and reads back: the same rules a request's reader applies.
                let encoded = core(blinding::encode_paths(std::slice::from_ref(&path)))?;
                core(blinding::parse_path("path", &encoded, Check::Full))?;
                Ok(Self(path))
            }
            /// The path on the wire (one `blinded_path`).
            fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
                Ok(bytes(py, &core(blinding::encode_paths(std::slice::from_ref(&self.0)))?))
            }
            fn __repr__(&self) -> String {
                let first = match &self.0.first_node {
                    IntroductionNode::NodeId(n) => hex(n),
                    IntroductionNode::Sciddir { direction, scid } => {
                        format!("scid {scid}/{direction}")
                    }
                };
                format!("BlindedPath(first_node={first}, hops={})", self.0.hops.len())
            }
        }
    }
}

#[pyfunction]
#[pyo3(signature = (paths))]
fn encode_blinded_paths<'py>(
    py: Python<'py>,
    paths: Vec<BlindedPath>,
) -> PyResult<Bound<'py, PyBytes>> {
    let paths: Vec<blinding::BlindedPath> = paths.into_iter().map(|p| p.0).collect();
    Ok(bytes(py, &core(blinding::encode_paths(&paths))?))
}

#[pyfunction]
#[pyo3(signature = (data, *, verify=true))]
fn parse_blinded_paths(data: &[u8], verify: bool) -> PyResult<Vec<BlindedPath>> {
    let paths = core(blinding::read_paths("paths", data, check(verify)))?;
    Ok(paths.into_iter().map(BlindedPath).collect())
}

#[pyfunction]
#[pyo3(signature = (destination, path_id, session_secret, *, introduction=None, pad=true))]
fn build_blinded_path(
    destination: &[u8],
    path_id: &[u8],
    session_secret: &[u8],
    introduction: Option<&[u8]>,
    pad: bool,
) -> PyResult<BlindedPath> {
    let spec = blinding::PathSpec { destination, introduction, path_id, pad };
    Ok(BlindedPath(core(spec.build(session_secret))?))
}

/// What a writer derives for one hop (BOLT 4); for tests against the spec's vectors.
#[pyclass(frozen, module = "invreq._core")]
struct HopSecrets(blinding::HopSecrets);

pyclass_methods! {
    HopSecrets(s) {
        path_key_secret: &[u8] = &s.path_key_secret;
        path_key: &[u8] = &s.path_key;
        shared_secret: &[u8] = &s.shared_secret;
        rho: &[u8] = &s.rho;
        blinded_node_id: &[u8] = &s.blinded_node_id;
        encrypted_recipient_data: &[u8] = &s.encrypted_recipient_data;
    }
}

#[pyfunction]
fn blind_hops(session_secret: &[u8], hops: Vec<(Vec<u8>, Vec<u8>)>) -> PyResult<Vec<HopSecrets>> {
    let refs: Vec<(&[u8], &[u8])> =
        hops.iter().map(|(n, p)| (n.as_slice(), p.as_slice())).collect();
    Ok(core(blinding::blind(session_secret, &refs))?.into_iter().map(HopSecrets).collect())
}

/// A hop's data as the node it is for reads it.
#[pyclass(frozen, module = "invreq._core")]
struct ReceivedHop(blinding::ReceivedHop);

pyclass_methods! {
    ReceivedHop(h) {
        shared_secret: &[u8] = &h.shared_secret;
        blinded_node_secret: &[u8] = &h.blinded_node_secret;
        plaintext: &[u8] = &h.plaintext;
        next_path_key: &[u8] = &h.next_path_key;
        padding: Option<&[u8]> = h.data.padding.as_deref();
        short_channel_id: Option<u64> = h.data.short_channel_id;
        next_node_id: Option<&[u8]> = h.data.next_node_id.as_ref().map(|p| &p[..]);
        path_id: Option<&[u8]> = h.data.path_id.as_deref();
        next_path_key_override: Option<&[u8]> =
            h.data.next_path_key_override.as_ref().map(|p| &p[..]);
        payment_relay: Option<&[u8]> = h.data.payment_relay.as_deref();
        payment_constraints: Option<&[u8]> = h.data.payment_constraints.as_deref();
        allowed_features: Option<&[u8]> = h.data.allowed_features.as_deref();
        unknown_records: Vec<(u64, &[u8])> =
            h.data.unknown.iter().map(|(t, v)| (*t, &v[..])).collect();
        methods {
            fn __repr__(&self) -> String {
                format!("ReceivedHop(next_path_key={})", hex(&self.0.next_path_key))
            }
        }
    }
}

#[pyfunction]
fn decrypt_hop(
    node_secret: &[u8],
    path_key: &[u8],
    encrypted_recipient_data: &[u8],
) -> PyResult<ReceivedHop> {
    Ok(ReceivedHop(core(blinding::receive(node_secret, path_key, encrypted_recipient_data))?))
}

#[pyfunction]
fn path_id<'py>(
    py: Python<'py>,
    path_secret: &[u8],
    metadata: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    Ok(bytes(py, &core(blinding::path_id(path_secret, metadata))?))
}

#[pyfunction]
fn path_id_matches(path_secret: &[u8], metadata: &[u8], candidate: &[u8]) -> PyResult<bool> {
    Ok(core(blinding::path_id_matches(path_secret, metadata, candidate))?)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<BlindedHop>()?;
    m.add_class::<BlindedPath>()?;
    m.add_class::<HopSecrets>()?;
    m.add_class::<ReceivedHop>()?;
    m.add_function(wrap_pyfunction!(encode_blinded_paths, m)?)?;
    m.add_function(wrap_pyfunction!(parse_blinded_paths, m)?)?;
    m.add_function(wrap_pyfunction!(build_blinded_path, m)?)?;
    m.add_function(wrap_pyfunction!(blind_hops, m)?)?;
    m.add_function(wrap_pyfunction!(decrypt_hop, m)?)?;
    m.add_function(wrap_pyfunction!(path_id, m)?)?;
    m.add_function(wrap_pyfunction!(path_id_matches, m)?)?;
    Ok(())
}
