//! LDK as the payee, for the Python tests (tests/test_ldk.py): reads an `lnr1...` string with
//! LDK's `Refund` parser, answers it as an LDK node would and prints the `lni1...` invoice.
//!
//! `cargo run -q -p invreq-core --example ldk_payee -- <lnr1...> <payment_hash hex>`
//!
//! An example, not a binary, so that LDK stays a dev-dependency: nothing shipped links it.

#[path = "../tests/ldk_common/mod.rs"]
mod ldk_common;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [lnr, hash] = args.as_slice() else {
        eprintln!("usage: ldk_payee <lnr1...> <payment_hash hex>");
        std::process::exit(2);
    };
    let hash: [u8; 32] =
        hex::decode(hash).ok().and_then(|h| h.try_into().ok()).unwrap_or_else(|| {
            eprintln!("payment_hash must be 32 bytes of hex");
            std::process::exit(2);
        });
    let refund: lightning::offers::refund::Refund = match lnr.parse() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("LDK refuses the request: {e:?}");
            std::process::exit(1);
        }
    };
    // Made now, as a payee makes it: receiveinvoice refuses expired invoices.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let unsigned = ldk_common::ldk_unsigned_invoice_at(&refund, hash, now.as_secs());
    let invoice = ldk_common::ldk_sign(unsigned);
    let bytes = lightning::util::ser::Writeable::encode(&invoice);
    println!("{}", invreq_core::string::encode("lni", &bytes).unwrap());
}
