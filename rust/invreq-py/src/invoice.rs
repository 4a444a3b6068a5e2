//! `invreq_core::invoice`: reading invoices, and building them for tests and tools.

use invreq_core::invoice::{self as inv, BlindedPayInfo};
use pyo3::prelude::*;

use crate::blinding::BlindedPath;
use crate::convert::{arr, check, hex, read};
use crate::error::core;

/// An invoice answering an invoice_request, waiting for the signature of its node id.
#[pyclass(frozen, module = "invreq._core")]
pub(crate) struct UnsignedInvoice(inv::UnsignedInvoice);

pyclass_methods! {
    UnsignedInvoice(u) {
        unsigned_message(Invoice);
        methods {
            #[new]
            #[pyo3(signature = (
                invoice_request_stream, *, created_at, payment_hash, amount_msat, node_id,
                paths=None, path_node_id=None, relative_expiry=None, features=None,
                fee_base_msat=0, fee_proportional_millionths=0, cltv_expiry_delta=0,
                htlc_minimum_msat=0, htlc_maximum_msat=None, unknown_records=Vec::new()
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
                        let id = arr("path_node_id", path_node_id.unwrap_or(node_id))?;
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
        }
    }
}

/// One `blinded_payinfo` entry of an invoice (what paying through its path costs);
/// `invreq.views` writes CLN's JSON shape of it.
#[pyclass(frozen, name = "BlindedPayInfo", module = "invreq._core")]
pub(crate) struct PyBlindedPayInfo(BlindedPayInfo);

pyclass_methods! {
    PyBlindedPayInfo(p) {
        fee_base_msat: u32 = p.fee_base_msat;
        fee_proportional_millionths: u32 = p.fee_proportional_millionths;
        cltv_expiry_delta: u16 = p.cltv_expiry_delta;
        htlc_minimum_msat: u64 = p.htlc_minimum_msat;
        htlc_maximum_msat: u64 = p.htlc_maximum_msat;
        features: &[u8] = &p.features;
    }
}

/// A signed, valid invoice.
#[pyclass(frozen, module = "invreq._core")]
pub(crate) struct Invoice(inv::Invoice);

pyclass_methods! {
    Invoice(i) {
        /// The `lni1...` string (lower case).
        bolt12: String = i.to_bolt12();
        tlv_stream: &[u8] = &i.bytes;
        invreq_id: &[u8] = &i.invreq_id;
        signature: &[u8] = &i.signature;
        invreq_metadata: Option<&[u8]> = i.request.metadata.as_deref();
        invreq_payer_id: Option<&[u8]> = i.request.payer_id.as_ref().map(|p| &p[..]);
        invreq_chain: Option<&[u8]> = i.request.chain.as_ref().map(|c| &c[..]);
        invreq_amount: Option<u64> = i.request.amount_msat;
        offer_description: Option<&str> = i.request.description.as_deref();
        offer_issuer: Option<&str> = i.request.issuer.as_deref();
        offer_absolute_expiry: Option<u64> = i.request.absolute_expiry;
        amount_msat: u64 = i.amount_msat;
        created_at: u64 = i.created_at;
        relative_expiry: Option<u32> = i.relative_expiry;
        expires_at: u64 = i.expires_at();
        payment_hash: &[u8] = &i.payment_hash;
        node_id: &[u8] = &i.node_id;
        paths: Vec<BlindedPath> = i.paths.iter().cloned().map(BlindedPath).collect();
        blindedpay: Vec<PyBlindedPayInfo> =
            i.blindedpay.iter().cloned().map(PyBlindedPayInfo).collect();
        features: Option<&[u8]> = i.features.as_deref();
        fallbacks: Option<&[u8]> = i.fallbacks.as_deref();
        /// Unknown odd records copied from the request, then the invoice's own, byte for byte.
        unknown_records: Vec<(u64, &[u8])> = {
            let all = i.request.unknown.iter().chain(&i.unknown);
            let mut out: Vec<_> = all.map(|(t, v)| (*t, &v[..])).collect();
            out.sort_by_key(|(t, _)| *t);
            out
        };
        compare_by_bytes(hash = payment_hash);
        methods {
            fn __repr__(&self) -> String {
                format!(
                    "Invoice(invreq_id={}, payment_hash={})",
                    hex(&self.0.invreq_id),
                    hex(&self.0.payment_hash)
                )
            }
        }
    }
}

#[pyfunction]
#[pyo3(signature = (s, *, verify=true))]
fn decode_invoice(py: Python<'_>, s: &str, verify: bool) -> PyResult<Invoice> {
    Ok(Invoice(read(py, verify, |c| inv::decode_with(s, c))?))
}

#[pyfunction]
#[pyo3(signature = (tlv_stream, *, verify=true))]
fn parse_invoice(tlv_stream: &[u8], verify: bool) -> PyResult<Invoice> {
    Ok(Invoice(core(inv::parse_with(tlv_stream, check(verify)))?))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(decode_invoice, m)?)?;
    m.add_function(wrap_pyfunction!(parse_invoice, m)?)?;
    m.add_class::<UnsignedInvoice>()?;
    m.add_class::<Invoice>()?;
    m.add_class::<PyBlindedPayInfo>()?;
    Ok(())
}
