//! `invreq_core::chain`: the chain hashes of the networks served.

use invreq_core::chain;
use pyo3::exceptions::PyKeyError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::convert::bytes;

#[pyfunction]
fn chains<'py>(py: Python<'py>) -> Vec<(&'static str, Bound<'py, PyBytes>)> {
    chain::CHAINS.iter().map(|(n, h)| (*n, bytes(py, h))).collect()
}

#[pyfunction]
fn chain_for_network<'py>(py: Python<'py>, network: &str) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let chain =
        chain::invreq_chain_for(network).ok_or_else(|| PyKeyError::new_err(network.to_owned()))?;
    Ok(chain.map(|h| bytes(py, &h)))
}

#[pyfunction]
fn network_for_chain(chain: Option<&[u8]>) -> Option<&'static str> {
    chain::network_of_invreq_chain(chain)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(chains, m)?)?;
    m.add_function(wrap_pyfunction!(chain_for_network, m)?)?;
    m.add_function(wrap_pyfunction!(network_for_chain, m)?)?;
    Ok(())
}
