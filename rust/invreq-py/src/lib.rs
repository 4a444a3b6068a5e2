//! `invreq._core`: the thin Python binding of `invreq-core`.
//!
//! Type conversion and one error mapping, nothing else: every BOLT 12 rule lives in the core
//! crate, every JSON shape in `invreq.views` (values leave as bytes, ints and typed objects).
//! Bytes come in by reference and go out as one `bytes` object. The public, documented API
//! is the Python facade `invreq.bolt12`.
//!
//! One module per module of the core, with the same name; `error` maps the core's errors to
//! `invreq.errors`, `convert` holds the conversions, and `macros` the one macro that writes
//! each class's getters.

#[macro_use]
mod macros;

mod blinding;
mod chain;
mod convert;
mod error;
mod invoice;
mod invoice_request;
mod merkle;
mod offer;
mod onion_message;
mod signature;
mod string;
mod tlv;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    merkle::register(m)?;
    string::register(m)?;
    tlv::register(m)?;
    chain::register(m)?;
    signature::register(m)?;
    invoice_request::register(m)?;
    offer::register(m)?;
    invoice::register(m)?;
    onion_message::register(m)?;
    blinding::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
