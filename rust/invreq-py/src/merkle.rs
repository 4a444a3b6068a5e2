//! `invreq_core::merkle`: the merkle root, tagged hashes and signature digests.

use invreq_core::merkle;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::convert::{arr, bytes};
use crate::error::core;

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
    let root: [u8; 32] = arr("merkle_root", merkle_root)?;
    Ok(bytes(py, &merkle::signature_digest(messagename, fieldname, &root)))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(merkle_root, m)?)?;
    m.add_function(wrap_pyfunction!(tagged_hash, m)?)?;
    m.add_function(wrap_pyfunction!(signature_digest, m)?)?;
    Ok(())
}
