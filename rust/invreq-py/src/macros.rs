//! The one macro of the binding: a class's `#[pymethods]` block with its getters written
//! once each.
//!
//! Every class wraps a core value in `.0`, and most of its methods only hand one field of it
//! to Python. So a getter is one line, `name: Type = expression;`, where the expression reads
//! the wrapped value through the name given after the class (`InvoiceRequest(r)`); the
//! getters several classes share are one named set each, written here once:
//!
//! - `offer_fields(FIELDS);`: the offer's fields (an offer's, and their copy in an
//!   invoice_request), read from an `invoice_request::Fields`;
//! - `unsigned_message(SIGNED);`: what a message waiting for its signature offers (its
//!   stream, merkle root, digest, `invreq_id`, `with_signature` returning `SIGNED`, a repr);
//! - `compare_by_bytes(hash = ID);`: `__eq__` and `__hash__` of a signed message.
//!
//! Whatever else the class has (`#[new]`, `__repr__`, `__eq__` ...) follows in `methods { }`,
//! as written. Types crossing into Python: `&[u8]` becomes `bytes` (arrays are sliced first,
//! a `[u8; N]` would become a list), `&str` and `String` `str`, integers `int`, `Option`
//! `None` or the value, `Vec` a list.
//!
//! ```ignore
//! pyclass_methods! {
//!     Offer(o) {
//!         offer_id: &[u8] = &o.offer_id;
//!         offer_fields(o.fields);
//!         methods {
//!             fn __repr__(&self) -> String { ... }
//!         }
//!     }
//! }
//! ```

macro_rules! pyclass_methods {
    ($cls:ident($v:ident) { $($body:tt)* }) => {
        pyclass_methods!(@munch $cls $v [] $($body)*);
    };

    // The offer's fields, read from `$f` (an `invoice_request::Fields`): getters like any other.
    (@munch $cls:ident $v:ident [$($out:tt)*] offer_fields($f:expr); $($tail:tt)*) => {
        pyclass_methods!(@munch $cls $v [$($out)*]
            offer_chains: Option<Vec<&[u8]>> =
                $f.offer_chains.as_ref().map(|c| c.iter().map(|h| &h[..]).collect());
            offer_metadata: Option<&[u8]> = $f.offer_metadata.as_deref();
            offer_currency: Option<&str> = $f.offer_currency.as_deref();
            offer_amount: Option<u64> = $f.offer_amount;
            description: Option<&str> = $f.description.as_deref();
            issuer: Option<&str> = $f.issuer.as_deref();
            offer_features: Option<&[u8]> = $f.offer_features.as_deref();
            absolute_expiry: Option<u64> = $f.absolute_expiry;
            offer_quantity_max: Option<u64> = $f.offer_quantity_max;
            offer_paths: Option<Vec<$crate::blinding::BlindedPath>> =
                $crate::blinding::typed_paths($f.offer_paths.as_deref());
            offer_issuer_id: Option<&[u8]> = $f.offer_issuer_id.as_ref().map(|p| &p[..]);
            /// Unknown odd records, byte for byte: `[(type, value), ...]`.
            unknown_records: Vec<(u64, &[u8])> =
                $f.unknown.iter().map(|(t, v)| (*t, &v[..])).collect();
            $($tail)*);
    };

    // A signed message: equal to another when their bytes are; hashed by the first 8 bytes of
    // its id `$k` (ids are hashes, so their bytes are already spread).
    (@munch $cls:ident $v:ident [$($out:tt)*] compare_by_bytes(hash = $k:ident); $($tail:tt)*) => {
        pyclass_methods!(@munch $cls $v [$($out)*
            fn __eq__(&self, other: &Self) -> bool {
                self.0.bytes == other.0.bytes
            }

            fn __hash__(&self) -> u64 {
                u64::from_be_bytes(self.0.$k[..8].try_into().expect("8 bytes"))
            }
        ] $($tail)*);
    };

    // A message built from fields, waiting for its signature (`$signed` wraps the result).
    (@munch $cls:ident $v:ident [$($out:tt)*] unsigned_message($signed:ident); $($tail:tt)*) => {
        pyclass_methods!(@munch $cls $v [$($out)*
            fn with_signature(
                &self,
                py: ::pyo3::Python<'_>,
                signature: &[u8],
            ) -> ::pyo3::PyResult<$signed> {
                // ~20 µs of curve arithmetic: other Python threads may run meanwhile.
                let signed = py.allow_threads(|| self.0.with_signature(signature));
                Ok($signed($crate::error::core(signed)?))
            }

            fn __repr__(&self) -> String {
                format!(
                    concat!(stringify!($cls), "(invreq_id={})"),
                    $crate::convert::hex(&self.0.invreq_id())
                )
            }
        ]
            /// The unsigned TLV stream.
            tlv_stream: &[u8] = $v.bytes();
            // The core hands these out by value: a 32-byte copy, then one `bytes`.
            merkle_root: ::std::borrow::Cow<'static, [u8]> = $v.merkle_root().to_vec().into();
            digest: ::std::borrow::Cow<'static, [u8]> = $v.digest().to_vec().into();
            invreq_id: ::std::borrow::Cow<'static, [u8]> = $v.invreq_id().to_vec().into();
            $($tail)*);
    };

    // The class's other methods, as written; they end the block.
    (@munch $cls:ident $v:ident [$($out:tt)*] methods { $($methods:tt)* }) => {
        #[::pyo3::pymethods]
        impl $cls {
            $($out)*
            $($methods)*
        }
    };

    // One getter: `name: Type = expression;`, the expression reading the wrapped value.
    (@munch $cls:ident $v:ident [$($out:tt)*]
        $(#[$attr:meta])* $name:ident: $ty:ty = $e:expr; $($tail:tt)*) => {
        pyclass_methods!(@munch $cls $v [$($out)*
            $(#[$attr])*
            #[getter]
            fn $name(&self) -> $ty {
                let $v = &self.0;
                $e
            }
        ] $($tail)*);
    };

    (@munch $cls:ident $v:ident [$($out:tt)*]) => {
        #[::pyo3::pymethods]
        impl $cls {
            $($out)*
        }
    };
}
