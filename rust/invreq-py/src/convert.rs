//! How values cross into Python that are not a getter's (those are in `macros.rs`).

use invreq_core::read::Check;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::error::{core, invalid_field, Res};

/// Bytes out: one `bytes` object.
pub(crate) fn bytes<'py>(py: Python<'py>, b: &[u8]) -> Bound<'py, PyBytes> {
    PyBytes::new(py, b)
}

/// Bytes in, of a fixed length: `InvalidFieldError` naming `field` otherwise.
pub(crate) fn arr<const N: usize>(field: &'static str, b: &[u8]) -> Res<[u8; N]> {
    b.try_into().map_err(|_| invalid_field(field, format!("must be {N} bytes")))
}

/// Python's `verify=` flag as the core's [`Check`].
pub(crate) fn check(verify: bool) -> Check {
    if verify {
        Check::Full
    } else {
        Check::StructureOnly
    }
}

/// Runs a read as `verify` asks, without the GIL when it verifies: checking points and the
/// signature is curve arithmetic other Python threads need not wait for, while a structural
/// read is too short to pay for releasing the GIL.
pub(crate) fn read<T: Send>(
    py: Python<'_>,
    verify: bool,
    f: impl FnOnce(Check) -> invreq_core::Result<T> + Send,
) -> Res<T> {
    let check = check(verify);
    core(if verify { py.allow_threads(|| f(check)) } else { f(check) })
}

/// Lower-case hex, for reprs.
pub(crate) fn hex(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(D[usize::from(x >> 4)] as char);
        s.push(D[usize::from(x & 15)] as char);
    }
    s
}
