//! `invreq_core::string`: the bech32 text form without checksum.

use invreq_core::string;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::convert::bytes;
use crate::error::core;

#[pyfunction]
fn encode_string(hrp: &str, data: &[u8]) -> PyResult<String> {
    Ok(core(string::encode(hrp, data))?)
}

#[pyfunction]
fn decode_string<'py>(py: Python<'py>, s: &str) -> PyResult<(String, Bound<'py, PyBytes>)> {
    let (hrp, data) = core(string::decode(s))?;
    Ok((hrp, bytes(py, &data)))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(encode_string, m)?)?;
    m.add_function(wrap_pyfunction!(decode_string, m)?)?;
    Ok(())
}
