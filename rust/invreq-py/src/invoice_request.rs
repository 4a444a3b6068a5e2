//! `invreq_core::invoice_request`: building, signing and reading requests.

use invreq_core::blinding as core_blinding;
use invreq_core::invoice_request as ir;
use invreq_core::read::Check;
use pyo3::prelude::*;

use crate::blinding::{typed_paths, BlindedPath};
use crate::convert::{check, hex, read};
use crate::error::core;

/// An invoice_request built from fields, waiting for its signature.
#[pyclass(frozen, module = "invreq._core")]
pub(crate) struct UnsignedInvoiceRequest(ir::UnsignedInvoiceRequest);

pyclass_methods! {
    UnsignedInvoiceRequest(r) {
        unsigned_message(InvoiceRequest);
        /// The `lnr1...` string of the unsigned request (BOLT 12's form for a request answering
        /// no offer, what LDK reads).
        bolt12: String = r.to_bolt12();
        methods {
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
                let paths: Vec<core_blinding::BlindedPath> =
                    paths.into_iter().map(|p| p.0).collect();
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
        }
    }
}

/// A signed, valid invoice_request.
#[pyclass(frozen, module = "invreq._core")]
pub(crate) struct InvoiceRequest(pub(crate) ir::InvoiceRequest);

pyclass_methods! {
    InvoiceRequest(r) {
        /// The `lnr1...` string (lower case), signed when the request has a signature.
        bolt12: String = r.to_bolt12();
        /// The string without the signature, for a request answering no offer; else `None`.
        bolt12_unsigned: Option<String> = r.to_bolt12_unsigned();
        tlv_stream: &[u8] = &r.bytes;
        invreq_id: &[u8] = &r.invreq_id;
        signature: Option<&[u8]> = r.signature.as_ref().map(|s| &s[..]);
        metadata: &[u8] = r.fields.metadata.as_deref().unwrap_or_default();
        payer_id: &[u8] = r.fields.payer_id.as_ref().map(|p| &p[..]).unwrap_or_default();
        chain: Option<&[u8]> = r.fields.chain.as_ref().map(|c| &c[..]);
        amount_msat: Option<u64> = r.fields.amount_msat;
        features: Option<&[u8]> = r.fields.features.as_deref();
        quantity: Option<u64> = r.fields.quantity;
        payer_note: Option<&str> = r.fields.payer_note.as_deref();
        paths: Option<Vec<BlindedPath>> = typed_paths(r.fields.paths.as_deref());
        bip353_name: Option<(String, String)> = r.fields.bip353_name.clone();
        offer_fields(r.fields);
        compare_by_bytes(hash = invreq_id);
        methods {
            fn __repr__(&self) -> String {
                format!("InvoiceRequest(invreq_id={})", hex(&self.0.invreq_id))
            }
        }
    }
}

/// A signed request's `(bolt12, bolt12_unsigned)` strings.
type SignedStrings = (String, Option<String>);

/// A batch's signatures in one crossing: each request with its signature, verified and
/// attached (all of them without the GIL), answered as its `(bolt12, bolt12_unsigned)`
/// strings, or `None` where the signature does not verify (that request alone fails).
#[pyfunction]
fn with_signatures(
    py: Python<'_>,
    unsigned: Vec<PyRef<'_, UnsignedInvoiceRequest>>,
    signatures: Vec<Vec<u8>>,
) -> PyResult<Vec<Option<SignedStrings>>> {
    if unsigned.len() != signatures.len() {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "{} requests and {} signatures",
            unsigned.len(),
            signatures.len()
        )));
    }
    let requests: Vec<&ir::UnsignedInvoiceRequest> = unsigned.iter().map(|u| &u.0).collect();
    Ok(py.allow_threads(|| {
        requests
            .iter()
            .zip(&signatures)
            .map(|(u, sig)| {
                let signed = u.with_signature(sig).ok()?;
                Some((signed.to_bolt12(), signed.to_bolt12_unsigned()))
            })
            .collect()
    }))
}

#[pyfunction]
#[pyo3(signature = (s, *, verify=true))]
fn decode_invoice_request(py: Python<'_>, s: &str, verify: bool) -> PyResult<InvoiceRequest> {
    Ok(InvoiceRequest(read(py, verify, |c| ir::decode(s, c))?))
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

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(with_signatures, m)?)?;
    m.add_function(wrap_pyfunction!(decode_invoice_request, m)?)?;
    m.add_function(wrap_pyfunction!(parse_invoice_request, m)?)?;
    m.add_function(wrap_pyfunction!(inspect_invoice_request, m)?)?;
    m.add_class::<UnsignedInvoiceRequest>()?;
    m.add_class::<InvoiceRequest>()?;
    Ok(())
}
