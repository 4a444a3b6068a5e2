//! `invreq_core::signature`: checking a BIP-340 signature.

use invreq_core::signature;
use pyo3::prelude::*;

use crate::error::core;

#[pyfunction]
fn verify_signature(digest: &[u8], signature: &[u8], pubkey: &[u8]) -> PyResult<()> {
    Ok(core(signature::verify_signature(digest, signature, pubkey))?)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(verify_signature, m)?)?;
    Ok(())
}
