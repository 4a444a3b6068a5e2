//! The one place a core error becomes a Python exception (the classes live in
//! `invreq.errors`, so Python code catches them by class, never by message).

use invreq_core::error::Error as CoreError;
use pyo3::prelude::*;

pyo3::import_exception!(invreq.errors, DecodeError);
pyo3::import_exception!(invreq.errors, SignatureError);
pyo3::import_exception!(invreq.errors, InvalidFieldError);

/// A core error on its way to Python.
pub(crate) struct Failure(pub(crate) CoreError);

impl From<Failure> for PyErr {
    fn from(Failure(e): Failure) -> PyErr {
        let msg = e.to_string();
        match e {
            CoreError::Decode(_) => DecodeError::new_err(msg),
            CoreError::Signature(_) => SignatureError::new_err(msg),
            CoreError::InvalidField { .. } => InvalidFieldError::new_err(msg),
        }
    }
}

/// A result whose error becomes the Python exception of its class.
pub(crate) type Res<T> = Result<T, Failure>;

/// Lifts a core result, so `?` turns its error into the Python exception.
pub(crate) fn core<T>(r: invreq_core::Result<T>) -> Res<T> {
    r.map_err(Failure)
}

/// A value the binding itself refuses (a wrong length, a missing choice), raised as the core
/// raises a builder's: `InvalidFieldError` naming the parameter.
pub(crate) fn invalid_field(field: &'static str, reason: impl Into<String>) -> Failure {
    Failure(CoreError::InvalidField { field, reason: reason.into() })
}
