//! `invreq_core::onion_message`: the reply that carries an `invoice_error` to a payee.

use invreq_core::onion_message;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::blinding::BlindedPath;
use crate::convert::bytes;
use crate::error::core;

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

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(reply_onion, m)?)?;
    m.add_function(wrap_pyfunction!(invoice_error, m)?)?;
    m.add("ONIONMSG_INVOICE_ERROR", onion_message::types::INVOICE_ERROR)?;
    Ok(())
}
