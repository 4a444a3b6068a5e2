//! `invreq._core`: the thin Python binding of `invreq-core`.
//!
//! Type conversion and one error mapping, nothing else: every BOLT 12 rule lives in the core
//! crate, every JSON shape in `invreq.views` (values leave as bytes, ints and typed objects).
//! Bytes come in by reference and go out as one `bytes` object. The public, documented API
//! is the Python facade `invreq.bolt12`.

use invreq_core::blinding;
use invreq_core::error::Error as CoreError;
use invreq_core::invoice::{self as inv, BlindedPayInfo};
use invreq_core::invoice_request::{self as ir, Check, IntroductionNode};
use invreq_core::{merkle, offer, onion_message, string, tlv};
use pyo3::exceptions::PyKeyError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

pyo3::import_exception!(invreq.errors, DecodeError);
pyo3::import_exception!(invreq.errors, SignatureError);
pyo3::import_exception!(invreq.errors, InvalidFieldError);

/// The one place a core error becomes a Python exception (classes live in `invreq.errors`).
struct Failure(CoreError);

impl From<Failure> for PyErr {
    fn from(Failure(e): Failure) -> PyErr {
        let msg = e.to_string();
        match e {
            CoreError::Decode(_) => DecodeError::new_err(msg),
            CoreError::Signature(_) => SignatureError::new_err(msg),
            CoreError::InvalidField { .. } => InvalidFieldError::new_err(msg),
        }
    }
}

type Res<T> = Result<T, Failure>;

fn core<T>(r: invreq_core::Result<T>) -> Res<T> {
    r.map_err(Failure)
}

fn bytes<'py>(py: Python<'py>, b: &[u8]) -> Bound<'py, PyBytes> {
    PyBytes::new(py, b)
}

#[pyfunction]
fn merkle_root<'py>(py: Python<'py>, tlv_stream: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    Ok(bytes(py, &core(merkle::merkle_root(tlv_stream))?))
}

#[pyfunction]
fn tagged_hash<'py>(py: Python<'py>, tag: &[u8], msg: &[u8]) -> Bound<'py, PyBytes> {
    bytes(py, &merkle::tagged_hash(tag, msg))
}

#[pyfunction]
fn signature_digest<'py>(
    py: Python<'py>,
    messagename: &str,
    fieldname: &str,
    merkle_root: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let root: [u8; 32] = merkle_root.try_into().map_err(|_| {
        Failure(CoreError::InvalidField { field: "merkle_root", reason: "must be 32 bytes".into() })
    })?;
    Ok(bytes(py, &merkle::signature_digest(messagename, fieldname, &root)))
}

#[pyfunction]
fn encode_string(hrp: &str, data: &[u8]) -> PyResult<String> {
    Ok(core(string::encode(hrp, data))?)
}

#[pyfunction]
fn decode_string<'py>(py: Python<'py>, s: &str) -> PyResult<(String, Bound<'py, PyBytes>)> {
    let (hrp, data) = core(string::decode(s))?;
    Ok((hrp, bytes(py, &data)))
}

#[pyfunction]
fn parse_tlv_stream<'py>(py: Python<'py>, stream: &[u8]) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for r in tlv::records(stream) {
        let r = core(r.map_err(CoreError::from))?;
        list.append((r.typ, bytes(py, r.value)))?;
    }
    Ok(list)
}

#[pyfunction]
fn encode_tlv_stream<'py>(
    py: Python<'py>,
    records: Vec<(u64, Vec<u8>)>,
) -> PyResult<Bound<'py, PyBytes>> {
    let refs: Vec<(u64, &[u8])> = records.iter().map(|(t, v)| (*t, v.as_slice())).collect();
    Ok(bytes(py, &core(tlv::encode_stream(&refs))?))
}

#[pyfunction]
fn verify_signature(digest: &[u8], signature: &[u8], pubkey: &[u8]) -> PyResult<()> {
    Ok(core(ir::verify_signature(digest, signature, pubkey))?)
}

#[pyfunction]
fn chains<'py>(py: Python<'py>) -> Vec<(&'static str, Bound<'py, PyBytes>)> {
    invreq_core::chain::CHAINS.iter().map(|(n, h)| (*n, bytes(py, h))).collect()
}

#[pyfunction]
fn chain_for_network<'py>(py: Python<'py>, network: &str) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let chain = invreq_core::chain::invreq_chain_for(network)
        .ok_or_else(|| PyKeyError::new_err(network.to_owned()))?;
    Ok(chain.map(|h| bytes(py, &h)))
}

#[pyfunction]
fn network_for_chain(chain: Option<&[u8]>) -> Option<&'static str> {
    invreq_core::chain::network_of_invreq_chain(chain)
}

/// An invoice_request built from fields, waiting for its signature.
#[pyclass(frozen, module = "invreq._core")]
struct UnsignedInvoiceRequest(ir::UnsignedInvoiceRequest);

#[pymethods]
impl UnsignedInvoiceRequest {
    #[new]
    #[pyo3(signature = (*, metadata, description, amount_msat, payer_id, absolute_expiry=None, issuer=None, chain=None, paths=Vec::new(), unknown_records=Vec::new()))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        metadata: &[u8],
        description: &str,
        amount_msat: u64,
        payer_id: &[u8],
        absolute_expiry: Option<u64>,
        issuer: Option<&str>,
        chain: Option<&[u8]>,
        paths: Vec<BlindedPath>,
        unknown_records: Vec<(u64, Vec<u8>)>,
    ) -> PyResult<Self> {
        let paths: Vec<blinding::BlindedPath> = paths.into_iter().map(|p| p.0).collect();
        let b = ir::Builder {
            metadata,
            description,
            amount_msat,
            payer_id,
            absolute_expiry,
            issuer,
            chain,
            paths: &paths,
            unknown: &unknown_records,
        };
        Ok(Self(core(b.build())?))
    }

    #[getter]
    fn tlv_stream<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, self.0.bytes())
    }
    #[getter]
    fn merkle_root<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.merkle_root())
    }
    #[getter]
    fn digest<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.digest())
    }
    #[getter]
    fn invreq_id<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.invreq_id())
    }
    /// The `lnr1...` string of the unsigned request (BOLT 12's form for a request answering
    /// no offer, what LDK reads).
    #[getter]
    fn bolt12(&self) -> String {
        self.0.to_bolt12()
    }

    fn with_signature(&self, py: Python<'_>, signature: &[u8]) -> PyResult<InvoiceRequest> {
        // ~20 µs of curve arithmetic: other Python threads may run meanwhile.
        let signed = py.allow_threads(|| self.0.with_signature(signature));
        Ok(InvoiceRequest(core(signed)?))
    }

    fn __repr__(&self) -> String {
        format!("UnsignedInvoiceRequest(invreq_id={})", hex(&self.0.invreq_id()))
    }
}

/// A signed, valid invoice_request.
#[pyclass(frozen, module = "invreq._core")]
struct InvoiceRequest(ir::InvoiceRequest);

fn opt_bytes<'py>(py: Python<'py>, b: Option<&[u8]>) -> Option<Bound<'py, PyBytes>> {
    b.map(|b| bytes(py, b))
}

fn hex(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(D[usize::from(x >> 4)] as char);
        s.push(D[usize::from(x & 15)] as char);
    }
    s
}

#[pymethods]
impl InvoiceRequest {
    /// The `lnr1...` string (lower case), signed when the request has a signature.
    #[getter]
    fn bolt12(&self) -> String {
        self.0.to_bolt12()
    }
    /// The string without the signature, for a request answering no offer; else `None`.
    #[getter]
    fn bolt12_unsigned(&self) -> Option<String> {
        self.0.to_bolt12_unsigned()
    }
    #[getter]
    fn tlv_stream<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.bytes)
    }
    #[getter]
    fn invreq_id<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.invreq_id)
    }
    #[getter]
    fn signature<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        opt_bytes(py, self.0.signature.as_ref().map(|s| s.as_slice()))
    }
    #[getter]
    fn metadata<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, self.0.fields.metadata.as_deref().unwrap_or_default())
    }
    #[getter]
    fn payer_id<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, self.0.fields.payer_id.as_ref().map(|p| p.as_slice()).unwrap_or_default())
    }
    #[getter]
    fn chain<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        opt_bytes(py, self.0.fields.chain.as_ref().map(|c| c.as_slice()))
    }
    #[getter]
    fn amount_msat(&self) -> Option<u64> {
        self.0.fields.amount_msat
    }
    #[getter]
    fn description(&self) -> Option<&str> {
        self.0.fields.description.as_deref()
    }
    #[getter]
    fn issuer(&self) -> Option<&str> {
        self.0.fields.issuer.as_deref()
    }
    #[getter]
    fn absolute_expiry(&self) -> Option<u64> {
        self.0.fields.absolute_expiry
    }
    #[getter]
    fn features<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        opt_bytes(py, self.0.fields.features.as_deref())
    }
    #[getter]
    fn quantity(&self) -> Option<u64> {
        self.0.fields.quantity
    }
    #[getter]
    fn payer_note(&self) -> Option<&str> {
        self.0.fields.payer_note.as_deref()
    }
    #[getter]
    fn paths(&self) -> Option<Vec<BlindedPath>> {
        typed_paths(self.0.fields.paths.as_deref())
    }
    #[getter]
    fn bip353_name(&self) -> Option<(String, String)> {
        self.0.fields.bip353_name.clone()
    }
    #[getter]
    fn offer_chains<'py>(&self, py: Python<'py>) -> Option<Vec<Bound<'py, PyBytes>>> {
        self.0.fields.offer_chains.as_ref().map(|c| c.iter().map(|h| bytes(py, h)).collect())
    }
    #[getter]
    fn offer_metadata<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        opt_bytes(py, self.0.fields.offer_metadata.as_deref())
    }
    #[getter]
    fn offer_currency(&self) -> Option<&str> {
        self.0.fields.offer_currency.as_deref()
    }
    #[getter]
    fn offer_amount(&self) -> Option<u64> {
        self.0.fields.offer_amount
    }
    #[getter]
    fn offer_features<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        opt_bytes(py, self.0.fields.offer_features.as_deref())
    }
    #[getter]
    fn offer_paths(&self) -> Option<Vec<BlindedPath>> {
        typed_paths(self.0.fields.offer_paths.as_deref())
    }
    #[getter]
    fn offer_quantity_max(&self) -> Option<u64> {
        self.0.fields.offer_quantity_max
    }
    #[getter]
    fn offer_issuer_id<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        opt_bytes(py, self.0.fields.offer_issuer_id.as_ref().map(|p| p.as_slice()))
    }
    /// Unknown odd records, byte for byte: `[(type, value), ...]`.
    #[getter]
    fn unknown_records<'py>(&self, py: Python<'py>) -> Vec<(u64, Bound<'py, PyBytes>)> {
        self.0.fields.unknown.iter().map(|(t, v)| (*t, bytes(py, v))).collect()
    }

    fn __repr__(&self) -> String {
        format!("InvoiceRequest(invreq_id={})", hex(&self.0.invreq_id))
    }

    fn __eq__(&self, other: &Self) -> bool {
        self.0.bytes == other.0.bytes
    }

    fn __hash__(&self) -> u64 {
        u64::from_be_bytes(self.0.invreq_id[..8].try_into().expect("8 bytes"))
    }
}

// ---- blinded paths ----------------------------------------------------------------------

fn arr<const N: usize>(field: &'static str, b: &[u8]) -> Res<[u8; N]> {
    b.try_into().map_err(|_| {
        Failure(CoreError::InvalidField { field, reason: format!("must be {N} bytes") })
    })
}

fn typed_paths(p: Option<&[blinding::BlindedPath]>) -> Option<Vec<BlindedPath>> {
    p.map(|p| p.iter().cloned().map(BlindedPath).collect())
}

/// One hop of a blinded path.
#[pyclass(frozen, eq, module = "invreq._core")]
#[derive(Clone, PartialEq)]
struct BlindedHop(blinding::BlindedHop);

#[pymethods]
impl BlindedHop {
    #[new]
    #[pyo3(signature = (blinded_node_id, encrypted_recipient_data))]
    fn new(blinded_node_id: &[u8], encrypted_recipient_data: Vec<u8>) -> PyResult<Self> {
        let blinded_node_id = arr("blinded_node_id", blinded_node_id)?;
        Ok(Self(blinding::BlindedHop { blinded_node_id, encrypted_recipient_data }))
    }
    #[getter]
    fn blinded_node_id<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.blinded_node_id)
    }
    #[getter]
    fn encrypted_recipient_data<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.encrypted_recipient_data)
    }
    fn __repr__(&self) -> String {
        format!(
            "BlindedHop(blinded_node_id={}, encrypted_recipient_data={} bytes)",
            hex(&self.0.blinded_node_id),
            self.0.encrypted_recipient_data.len()
        )
    }
}

/// A blinded path: entered at a node id, or at one end (`first_scid_dir`) of a channel
/// (`first_scid`), with its first path key and its hops.
#[pyclass(frozen, eq, module = "invreq._core")]
#[derive(Clone, PartialEq)]
struct BlindedPath(blinding::BlindedPath);

#[pymethods]
impl BlindedPath {
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
            (None, Some(scid), Some(direction)) => IntroductionNode::Sciddir { direction, scid },
            _ => {
                return Err(Failure(CoreError::InvalidField {
                    field: "first_node_id",
                    reason: "give first_node_id, or first_scid with first_scid_dir".into(),
                })
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
    #[getter]
    fn first_node_id<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        match &self.0.first_node {
            IntroductionNode::NodeId(n) => Some(bytes(py, n)),
            IntroductionNode::Sciddir { .. } => None,
        }
    }
    /// The short channel id as a u64 (block << 40 | tx << 16 | output).
    #[getter]
    fn first_scid(&self) -> Option<u64> {
        match self.0.first_node {
            IntroductionNode::Sciddir { scid, .. } => Some(scid),
            IntroductionNode::NodeId(_) => None,
        }
    }
    #[getter]
    fn first_scid_dir(&self) -> Option<u8> {
        match self.0.first_node {
            IntroductionNode::Sciddir { direction, .. } => Some(direction),
            IntroductionNode::NodeId(_) => None,
        }
    }
    #[getter]
    fn first_path_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.first_path_key)
    }
    #[getter]
    fn hops(&self) -> Vec<BlindedHop> {
        self.0.hops.iter().cloned().map(BlindedHop).collect()
    }
    /// The path on the wire (one `blinded_path`).
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(bytes(py, &core(blinding::encode_paths(std::slice::from_ref(&self.0)))?))
    }
    fn __repr__(&self) -> String {
        let first = match &self.0.first_node {
            IntroductionNode::NodeId(n) => hex(n),
            IntroductionNode::Sciddir { direction, scid } => format!("scid {scid}/{direction}"),
        };
        format!("BlindedPath(first_node={first}, hops={})", self.0.hops.len())
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

#[pymethods]
impl HopSecrets {
    #[getter]
    fn path_key_secret<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.path_key_secret)
    }
    #[getter]
    fn path_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.path_key)
    }
    #[getter]
    fn shared_secret<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.shared_secret)
    }
    #[getter]
    fn rho<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.rho)
    }
    #[getter]
    fn blinded_node_id<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.blinded_node_id)
    }
    #[getter]
    fn encrypted_recipient_data<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.encrypted_recipient_data)
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

#[pymethods]
impl ReceivedHop {
    #[getter]
    fn shared_secret<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.shared_secret)
    }
    #[getter]
    fn blinded_node_secret<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.blinded_node_secret)
    }
    #[getter]
    fn plaintext<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.plaintext)
    }
    #[getter]
    fn next_path_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.next_path_key)
    }
    #[getter]
    fn padding<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        opt_bytes(py, self.0.data.padding.as_deref())
    }
    #[getter]
    fn short_channel_id(&self) -> Option<u64> {
        self.0.data.short_channel_id
    }
    #[getter]
    fn next_node_id<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        opt_bytes(py, self.0.data.next_node_id.as_ref().map(|p| p.as_slice()))
    }
    #[getter]
    fn path_id<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        opt_bytes(py, self.0.data.path_id.as_deref())
    }
    #[getter]
    fn next_path_key_override<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        opt_bytes(py, self.0.data.next_path_key_override.as_ref().map(|p| p.as_slice()))
    }
    #[getter]
    fn payment_relay<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        opt_bytes(py, self.0.data.payment_relay.as_deref())
    }
    #[getter]
    fn payment_constraints<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        opt_bytes(py, self.0.data.payment_constraints.as_deref())
    }
    #[getter]
    fn allowed_features<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        opt_bytes(py, self.0.data.allowed_features.as_deref())
    }
    #[getter]
    fn unknown_records<'py>(&self, py: Python<'py>) -> Vec<(u64, Bound<'py, PyBytes>)> {
        self.0.data.unknown.iter().map(|(t, v)| (*t, bytes(py, v))).collect()
    }
    fn __repr__(&self) -> String {
        format!("ReceivedHop(next_path_key={})", hex(&self.0.next_path_key))
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

fn check(verify: bool) -> Check {
    if verify {
        Check::Full
    } else {
        Check::StructureOnly
    }
}

#[pyfunction]
#[pyo3(signature = (s, *, verify=true))]
fn decode_invoice_request(py: Python<'_>, s: &str, verify: bool) -> PyResult<InvoiceRequest> {
    // Without the GIL only when verifying: the structural decode is too short to pay for it.
    let decoded = if verify {
        py.allow_threads(|| ir::decode(s, check(verify)))
    } else {
        ir::decode(s, check(verify))
    };
    Ok(InvoiceRequest(core(decoded)?))
}

/// The name of a [`ir::SignatureStatus`], as Python sees it.
fn status_name(s: ir::SignatureStatus) -> &'static str {
    match s {
        ir::SignatureStatus::Valid => "valid",
        ir::SignatureStatus::Unsigned => "unsigned",
        ir::SignatureStatus::Missing => "missing",
        ir::SignatureStatus::Invalid => "invalid",
    }
}

#[pyfunction]
fn inspect_invoice_request(py: Python<'_>, s: &str) -> PyResult<(InvoiceRequest, &'static str)> {
    let (r, status) = core(py.allow_threads(|| ir::decode_inspect(s, Check::Full)))?;
    Ok((InvoiceRequest(r), status_name(status)))
}

#[pyfunction]
#[pyo3(signature = (tlv_stream, *, verify=true))]
fn parse_invoice_request(tlv_stream: &[u8], verify: bool) -> PyResult<InvoiceRequest> {
    Ok(InvoiceRequest(core(ir::parse(tlv_stream, check(verify)))?))
}

/// An invoice answering an invoice_request, waiting for the signature of its node id.
#[pyclass(frozen, module = "invreq._core")]
struct UnsignedInvoice(inv::UnsignedInvoice);

#[pymethods]
impl UnsignedInvoice {
    #[new]
    #[pyo3(signature = (
        invoice_request_stream, *, created_at, payment_hash, amount_msat, node_id, paths=None,
        path_node_id=None, relative_expiry=None, features=None, fee_base_msat=0,
        fee_proportional_millionths=0, cltv_expiry_delta=0, htlc_minimum_msat=0,
        htlc_maximum_msat=None, unknown_records=Vec::new()
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        invoice_request_stream: &[u8],
        created_at: u64,
        payment_hash: &[u8],
        amount_msat: u64,
        node_id: &[u8],
        paths: Option<&[u8]>,
        path_node_id: Option<&[u8]>,
        relative_expiry: Option<u32>,
        features: Option<&[u8]>,
        fee_base_msat: u32,
        fee_proportional_millionths: u32,
        cltv_expiry_delta: u16,
        htlc_minimum_msat: u64,
        htlc_maximum_msat: Option<u64>,
        unknown_records: Vec<(u64, Vec<u8>)>,
    ) -> PyResult<Self> {
        let placeholder;
        let paths = match paths {
            Some(p) => p,
            None => {
                let id = path_node_id.unwrap_or(node_id).try_into().map_err(|_| {
                    Failure(CoreError::InvalidField {
                        field: "path_node_id",
                        reason: "must be 33 bytes".into(),
                    })
                })?;
                placeholder = core(inv::encode_paths(&[inv::placeholder_path(id)]))?;
                &placeholder
            }
        };
        let payinfo = BlindedPayInfo {
            fee_base_msat,
            fee_proportional_millionths,
            cltv_expiry_delta,
            htlc_minimum_msat,
            htlc_maximum_msat: htlc_maximum_msat.unwrap_or(amount_msat),
            features: Vec::new(),
        };
        let b = inv::InvoiceBuilder {
            invoice_request: invoice_request_stream,
            paths,
            payinfo: &payinfo,
            created_at,
            relative_expiry,
            payment_hash,
            amount_msat,
            node_id,
            features,
            unknown: &unknown_records,
        };
        Ok(Self(core(b.build())?))
    }

    #[getter]
    fn tlv_stream<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, self.0.bytes())
    }
    #[getter]
    fn merkle_root<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.merkle_root())
    }
    #[getter]
    fn digest<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.digest())
    }
    #[getter]
    fn invreq_id<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.invreq_id())
    }

    fn with_signature(&self, py: Python<'_>, signature: &[u8]) -> PyResult<Invoice> {
        let signed = py.allow_threads(|| self.0.with_signature(signature));
        Ok(Invoice(core(signed)?))
    }

    fn __repr__(&self) -> String {
        format!("UnsignedInvoice(invreq_id={})", hex(&self.0.invreq_id()))
    }
}

/// A signed, valid invoice.
#[pyclass(frozen, module = "invreq._core")]
struct Invoice(inv::Invoice);

/// One `blinded_payinfo` entry of an invoice (what paying through its path costs);
/// `invreq.views` writes CLN's JSON shape of it.
#[pyclass(frozen, name = "BlindedPayInfo", module = "invreq._core")]
struct PyBlindedPayInfo(BlindedPayInfo);

#[pymethods]
impl PyBlindedPayInfo {
    #[getter]
    fn fee_base_msat(&self) -> u32 {
        self.0.fee_base_msat
    }
    #[getter]
    fn fee_proportional_millionths(&self) -> u32 {
        self.0.fee_proportional_millionths
    }
    #[getter]
    fn cltv_expiry_delta(&self) -> u16 {
        self.0.cltv_expiry_delta
    }
    #[getter]
    fn htlc_minimum_msat(&self) -> u64 {
        self.0.htlc_minimum_msat
    }
    #[getter]
    fn htlc_maximum_msat(&self) -> u64 {
        self.0.htlc_maximum_msat
    }
    #[getter]
    fn features<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.features)
    }
}

#[pymethods]
impl Invoice {
    /// The `lni1...` string (lower case).
    #[getter]
    fn bolt12(&self) -> String {
        self.0.to_bolt12()
    }
    #[getter]
    fn tlv_stream<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.bytes)
    }
    #[getter]
    fn invreq_id<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.invreq_id)
    }
    #[getter]
    fn signature<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.signature)
    }
    #[getter]
    fn invreq_metadata<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        opt_bytes(py, self.0.request.metadata.as_deref())
    }
    #[getter]
    fn invreq_payer_id<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        opt_bytes(py, self.0.request.payer_id.as_ref().map(|p| p.as_slice()))
    }
    #[getter]
    fn invreq_chain<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        opt_bytes(py, self.0.request.chain.as_ref().map(|c| c.as_slice()))
    }
    #[getter]
    fn invreq_amount(&self) -> Option<u64> {
        self.0.request.amount_msat
    }
    #[getter]
    fn offer_description(&self) -> Option<&str> {
        self.0.request.description.as_deref()
    }
    #[getter]
    fn offer_issuer(&self) -> Option<&str> {
        self.0.request.issuer.as_deref()
    }
    #[getter]
    fn offer_absolute_expiry(&self) -> Option<u64> {
        self.0.request.absolute_expiry
    }
    #[getter]
    fn amount_msat(&self) -> u64 {
        self.0.amount_msat
    }
    #[getter]
    fn created_at(&self) -> u64 {
        self.0.created_at
    }
    #[getter]
    fn relative_expiry(&self) -> Option<u32> {
        self.0.relative_expiry
    }
    #[getter]
    fn expires_at(&self) -> u64 {
        self.0.expires_at()
    }
    #[getter]
    fn payment_hash<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.payment_hash)
    }
    #[getter]
    fn node_id<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.node_id)
    }
    #[getter]
    fn paths(&self) -> Vec<BlindedPath> {
        self.0.paths.iter().cloned().map(BlindedPath).collect()
    }
    #[getter]
    fn blindedpay(&self) -> Vec<PyBlindedPayInfo> {
        self.0.blindedpay.iter().cloned().map(PyBlindedPayInfo).collect()
    }
    #[getter]
    fn features<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        opt_bytes(py, self.0.features.as_deref())
    }
    #[getter]
    fn fallbacks<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        opt_bytes(py, self.0.fallbacks.as_deref())
    }
    /// Unknown odd records copied from the request, then the invoice's own, byte for byte.
    #[getter]
    fn unknown_records<'py>(&self, py: Python<'py>) -> Vec<(u64, Bound<'py, PyBytes>)> {
        let all = self.0.request.unknown.iter().chain(&self.0.unknown);
        let mut out: Vec<_> = all.map(|(t, v)| (*t, bytes(py, v))).collect();
        out.sort_by_key(|(t, _)| *t);
        out
    }

    fn __repr__(&self) -> String {
        format!(
            "Invoice(invreq_id={}, payment_hash={})",
            hex(&self.0.invreq_id),
            hex(&self.0.payment_hash)
        )
    }

    fn __eq__(&self, other: &Self) -> bool {
        self.0.bytes == other.0.bytes
    }

    fn __hash__(&self) -> u64 {
        u64::from_be_bytes(self.0.payment_hash[..8].try_into().expect("8 bytes"))
    }
}

#[pyfunction]
#[pyo3(signature = (s, *, verify=true))]
fn decode_invoice(py: Python<'_>, s: &str, verify: bool) -> PyResult<Invoice> {
    let decoded = if verify {
        py.allow_threads(|| inv::decode_with(s, check(verify)))
    } else {
        inv::decode_with(s, check(verify))
    };
    Ok(Invoice(core(decoded)?))
}

#[pyfunction]
#[pyo3(signature = (tlv_stream, *, verify=true))]
fn parse_invoice(tlv_stream: &[u8], verify: bool) -> PyResult<Invoice> {
    Ok(Invoice(core(inv::parse_with(tlv_stream, check(verify)))?))
}

/// A valid offer (`lno1...`), read for `decode`.
#[pyclass(frozen, module = "invreq._core")]
struct Offer(offer::Offer);

#[pymethods]
impl Offer {
    #[getter]
    fn bolt12(&self) -> String {
        self.0.to_bolt12()
    }
    #[getter]
    fn offer_id<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.offer_id)
    }
    #[getter]
    fn offer_chains<'py>(&self, py: Python<'py>) -> Option<Vec<Bound<'py, PyBytes>>> {
        self.0.fields.offer_chains.as_ref().map(|c| c.iter().map(|h| bytes(py, h)).collect())
    }
    #[getter]
    fn offer_metadata<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        opt_bytes(py, self.0.fields.offer_metadata.as_deref())
    }
    #[getter]
    fn offer_currency(&self) -> Option<&str> {
        self.0.fields.offer_currency.as_deref()
    }
    #[getter]
    fn offer_amount(&self) -> Option<u64> {
        self.0.fields.offer_amount
    }
    #[getter]
    fn description(&self) -> Option<&str> {
        self.0.fields.description.as_deref()
    }
    #[getter]
    fn issuer(&self) -> Option<&str> {
        self.0.fields.issuer.as_deref()
    }
    #[getter]
    fn offer_features<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        opt_bytes(py, self.0.fields.offer_features.as_deref())
    }
    #[getter]
    fn absolute_expiry(&self) -> Option<u64> {
        self.0.fields.absolute_expiry
    }
    #[getter]
    fn offer_quantity_max(&self) -> Option<u64> {
        self.0.fields.offer_quantity_max
    }
    #[getter]
    fn offer_paths(&self) -> Option<Vec<BlindedPath>> {
        typed_paths(self.0.fields.offer_paths.as_deref())
    }
    #[getter]
    fn offer_issuer_id<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        opt_bytes(py, self.0.fields.offer_issuer_id.as_ref().map(|p| p.as_slice()))
    }
    /// Unknown odd records, byte for byte: `[(type, value), ...]`.
    #[getter]
    fn unknown_records<'py>(&self, py: Python<'py>) -> Vec<(u64, Bound<'py, PyBytes>)> {
        self.0.fields.unknown.iter().map(|(t, v)| (*t, bytes(py, v))).collect()
    }

    fn __repr__(&self) -> String {
        format!("Offer(offer_id={})", hex(&self.0.offer_id))
    }
}

#[pyfunction]
fn decode_offer(s: &str) -> PyResult<Offer> {
    Ok(Offer(core(offer::decode(s, Check::Full))?))
}

#[pyfunction]
#[pyo3(signature = (own_node_id, reply_path, final_records, *, session_key, path_key_secret))]
fn reply_onion<'py>(
    py: Python<'py>,
    own_node_id: &[u8],
    reply_path: &BlindedPath,
    final_records: Vec<(u64, Vec<u8>)>,
    session_key: &[u8],
    path_key_secret: &[u8],
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
    let (path_key, packet) = core(onion_message::reply_onion(
        own_node_id,
        &reply_path.0,
        &final_records,
        session_key,
        path_key_secret,
    ))?;
    Ok((bytes(py, &path_key), bytes(py, &packet)))
}

#[pyfunction]
fn invoice_error<'py>(py: Python<'py>, message: &str) -> Bound<'py, PyBytes> {
    bytes(py, &onion_message::invoice_error(message))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(merkle_root, m)?)?;
    m.add_function(wrap_pyfunction!(tagged_hash, m)?)?;
    m.add_function(wrap_pyfunction!(signature_digest, m)?)?;
    m.add_function(wrap_pyfunction!(encode_string, m)?)?;
    m.add_function(wrap_pyfunction!(decode_string, m)?)?;
    m.add_function(wrap_pyfunction!(parse_tlv_stream, m)?)?;
    m.add_function(wrap_pyfunction!(encode_tlv_stream, m)?)?;
    m.add_function(wrap_pyfunction!(verify_signature, m)?)?;
    m.add_function(wrap_pyfunction!(chains, m)?)?;
    m.add_function(wrap_pyfunction!(chain_for_network, m)?)?;
    m.add_function(wrap_pyfunction!(network_for_chain, m)?)?;
    m.add_function(wrap_pyfunction!(decode_invoice_request, m)?)?;
    m.add_function(wrap_pyfunction!(parse_invoice_request, m)?)?;
    m.add_function(wrap_pyfunction!(inspect_invoice_request, m)?)?;
    m.add_function(wrap_pyfunction!(decode_offer, m)?)?;
    m.add_class::<Offer>()?;
    m.add_class::<UnsignedInvoiceRequest>()?;
    m.add_class::<InvoiceRequest>()?;
    m.add_function(wrap_pyfunction!(decode_invoice, m)?)?;
    m.add_function(wrap_pyfunction!(parse_invoice, m)?)?;
    m.add_class::<UnsignedInvoice>()?;
    m.add_class::<Invoice>()?;
    m.add_class::<PyBlindedPayInfo>()?;
    m.add_function(wrap_pyfunction!(reply_onion, m)?)?;
    m.add_function(wrap_pyfunction!(invoice_error, m)?)?;
    m.add("ONIONMSG_INVOICE_ERROR", onion_message::types::INVOICE_ERROR)?;
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
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
