//! Writes the JSON Schemas of this worker's stored types for other services (a TypeScript
//! worker, a Python job): `cargo run --bin export_schemas -- schemas/` (natively, beside the
//! wasm build; the crate is also an `rlib` for this).
use kv_envelope::export::export_schemas;
use kv_envelope_minimal_worker::{Forecast, Profile};

fn main() -> std::io::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "schemas".into());
    for written in [
        export_schemas::<Profile>(&dir)?,
        export_schemas::<Forecast>(&dir)?,
    ]
    .concat()
    {
        println!("{}", written.display());
    }
    Ok(())
}
