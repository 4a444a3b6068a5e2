//! `invreq_core::tlv`: BOLT 1 TLV streams.

use invreq_core::error::Error as CoreError;
use invreq_core::tlv;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use crate::convert::bytes;
use crate::error::core;

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

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(parse_tlv_stream, m)?)?;
    m.add_function(wrap_pyfunction!(encode_tlv_stream, m)?)?;
    Ok(())
}
