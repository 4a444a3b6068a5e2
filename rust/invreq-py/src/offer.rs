//! `invreq_core::offer`: reading an offer, for `decode`.

use invreq_core::offer;
use invreq_core::read::Check;
use pyo3::prelude::*;

use crate::convert::hex;
use crate::error::core;

/// A valid offer (`lno1...`), read for `decode`.
#[pyclass(frozen, module = "invreq._core")]
pub(crate) struct Offer(offer::Offer);

pyclass_methods! {
    Offer(o) {
        bolt12: String = o.to_bolt12();
        offer_id: &[u8] = &o.offer_id;
        offer_fields(o.fields);
        methods {
            fn __repr__(&self) -> String {
                format!("Offer(offer_id={})", hex(&self.0.offer_id))
            }
        }
    }
}

#[pyfunction]
fn decode_offer(s: &str) -> PyResult<Offer> {
    Ok(Offer(core(offer::decode(s, Check::Full))?))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(decode_offer, m)?)?;
    m.add_class::<Offer>()?;
    Ok(())
}
